// AES-XTS over data units with Crypto++ (see xts.hpp for the rules and their sources).
#include "icemu/models/xts.hpp"

#include <cryptopp/aes.h>
#include <cryptopp/sha.h>
#include <cryptopp/xts.h>

#include <stdexcept>

namespace icemu::models {

U128 tweak_for_unit(std::uint64_t dun, std::uint64_t unit_index, DunCarry carry) {
    U128 t;
    t.lo = dun + unit_index; // wraps mod 2^64 (unsigned arithmetic)
    if (carry == DunCarry::kernel_fallback && t.lo < dun) {
        t.hi = 1; // bio_crypt_dun_increment: carry into dun[1]
    }
    return t;
}

std::array<std::uint8_t, 16> tweak_bytes(U128 tweak) {
    std::array<std::uint8_t, 16> b{};
    for (unsigned i = 0; i < 8; ++i) {
        b[i] = static_cast<std::uint8_t>(tweak.lo >> (8 * i));
        b[8 + i] = static_cast<std::uint8_t>(tweak.hi >> (8 * i));
    }
    return b;
}

bool is_xts_key_size(std::size_t key_bytes) {
    return key_bytes == kXts128KeyBytes || key_bytes == kXts256KeyBytes;
}

struct XtsCipher::Impl {
    CryptoPP::XTS_Mode<CryptoPP::AES>::Encryption enc;
    CryptoPP::XTS_Mode<CryptoPP::AES>::Decryption dec;
};

XtsCipher::XtsCipher(ByteView key) : impl_(std::make_unique<Impl>()), key_size_(key.size()) {
    if (!is_xts_key_size(key.size())) {
        throw std::invalid_argument("AES-XTS key must be 32 or 64 bytes, got " +
                                    std::to_string(key.size()));
    }
    const std::array<std::uint8_t, 16> zero_iv{};
    impl_->enc.SetKeyWithIV(key.data(), key.size(), zero_iv.data(), zero_iv.size());
    impl_->dec.SetKeyWithIV(key.data(), key.size(), zero_iv.data(), zero_iv.size());
}

XtsCipher::~XtsCipher() = default;
XtsCipher::XtsCipher(XtsCipher&&) noexcept = default;
XtsCipher& XtsCipher::operator=(XtsCipher&&) noexcept = default;

namespace {

void check_geometry(std::size_t data_unit_size, std::size_t in_size, std::size_t out_size) {
    if (data_unit_size == 0 || data_unit_size % kAesBlockBytes != 0) {
        throw std::invalid_argument("data unit size must be a non-zero multiple of 16, got " +
                                    std::to_string(data_unit_size));
    }
    if (in_size % data_unit_size != 0) {
        throw std::invalid_argument("buffer of " + std::to_string(in_size) +
                                    " bytes is not a whole number of " +
                                    std::to_string(data_unit_size) + "-byte data units");
    }
    if (out_size != in_size) {
        throw std::invalid_argument("output buffer size differs from input size");
    }
}

template <typename Mode>
void run_units(Mode& mode, std::uint64_t dun, std::size_t du, ByteView in,
               std::span<std::uint8_t> out, DunCarry carry) {
    check_geometry(du, in.size(), out.size());
    const std::size_t units = in.size() / du;
    for (std::size_t i = 0; i < units; ++i) {
        const auto iv = tweak_bytes(tweak_for_unit(dun, i, carry));
        mode.Resynchronize(iv.data(), static_cast<int>(iv.size()));
        mode.ProcessData(out.data() + i * du, in.data() + i * du, du);
    }
}

} // namespace

void XtsCipher::encrypt(std::uint64_t dun, std::size_t data_unit_size, ByteView in,
                        std::span<std::uint8_t> out, DunCarry carry) {
    run_units(impl_->enc, dun, data_unit_size, in, out, carry);
}

void XtsCipher::decrypt(std::uint64_t dun, std::size_t data_unit_size, ByteView in,
                        std::span<std::uint8_t> out, DunCarry carry) {
    run_units(impl_->dec, dun, data_unit_size, in, out, carry);
}

Bytes xts_encrypt(ByteView key, std::uint64_t dun, std::size_t data_unit_size, ByteView plaintext,
                  DunCarry carry) {
    XtsCipher c(key);
    Bytes out(plaintext.size());
    c.encrypt(dun, data_unit_size, plaintext, out, carry);
    return out;
}

Bytes xts_decrypt(ByteView key, std::uint64_t dun, std::size_t data_unit_size, ByteView ciphertext,
                  DunCarry carry) {
    XtsCipher c(key);
    Bytes out(ciphertext.size());
    c.decrypt(dun, data_unit_size, ciphertext, out, carry);
    return out;
}

std::string key_fingerprint(ByteView key) {
    std::array<std::uint8_t, CryptoPP::SHA256::DIGESTSIZE> digest{};
    CryptoPP::SHA256 sha;
    sha.CalculateDigest(digest.data(), key.data(), key.size());
    return to_hex(ByteView(digest.data(), 8));
}

Bytes xts_key_from_cryptokey(std::span<const std::uint8_t, 64> cryptokey, unsigned key_bits) {
    if (key_bits != 128 && key_bits != 256) {
        throw std::invalid_argument("XTS key size must be 128 or 256 bits");
    }
    const std::size_t half = key_bits / 8;
    Bytes key(cryptokey.begin(), cryptokey.begin() + static_cast<std::ptrdiff_t>(half));
    key.insert(key.end(), cryptokey.begin() + 32,
               cryptokey.begin() + 32 + static_cast<std::ptrdiff_t>(half));
    return key;
}

std::array<std::uint8_t, 64> cryptokey_from_xts_key(ByteView key) {
    if (!is_xts_key_size(key.size())) {
        throw std::invalid_argument("AES-XTS key must be 32 or 64 bytes");
    }
    std::array<std::uint8_t, 64> ck{};
    const std::size_t half = key.size() / 2;
    for (std::size_t i = 0; i < half; ++i) {
        ck[i] = key[i];
        ck[32 + i] = key[half + i];
    }
    return ck;
}

std::string to_hex(ByteView bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        s.push_back(digits[b >> 4]);
        s.push_back(digits[b & 0xf]);
    }
    return s;
}

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
} // namespace

Bytes from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw std::invalid_argument("hex string has an odd number of digits");
    }
    Bytes out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_value(hex[2 * i]);
        const int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            throw std::invalid_argument("invalid hex digit in \"" + std::string(hex) + "\"");
        }
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return out;
}

} // namespace icemu::models
