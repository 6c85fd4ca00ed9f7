// hw_wrapped.hpp: the standard hardware KDF and icemu's key blobs. Crypto++ provides CMAC<AES>
// and EAX<AES>; the counter-mode construction follows NIST SP 800-108r1 §4.1 directly, the blob
// layout docs/device.md "Blob format".
#include "icemu/models/hw_wrapped.hpp"

#include <algorithm>
#include <array>

#include <cryptopp/aes.h>
#include <cryptopp/cmac.h>
#include <cryptopp/eax.h>
#include <cryptopp/misc.h>

#include <stdexcept>
#include <string_view>

namespace icemu::models::hw_wrapped {

namespace {

constexpr std::uint8_t kLabel[11] = {0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 0x00, 0x00, 0x20};

// "<text>" followed by `tail`: the contexts of the two derived keys.
Bytes context(std::string_view text, std::initializer_list<std::uint8_t> tail) {
    Bytes c(text.begin(), text.end());
    c.insert(c.end(), tail);
    return c;
}

void put_be32(Bytes& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out.push_back(static_cast<std::uint8_t>(v >> shift));
    }
}

void require_master(ByteView master_key) {
    if (master_key.size() != kMasterKeyBytes) {
        throw std::invalid_argument("a hardware-wrapped master key is 32 bytes, not " +
                                    std::to_string(master_key.size()));
    }
}

} // namespace

Bytes aes256_cmac(ByteView key, ByteView message) {
    if (key.size() != 32) {
        throw std::invalid_argument("AES-256-CMAC needs a 32-byte key");
    }
    CryptoPP::CMAC<CryptoPP::AES> mac(key.data(), key.size());
    Bytes out(CryptoPP::AES::BLOCKSIZE);
    mac.CalculateDigest(out.data(), message.data(), message.size());
    return out;
}

Bytes kdf_counter_cmac(ByteView key, ByteView label, ByteView context, std::size_t length) {
    constexpr std::size_t h = CryptoPP::AES::BLOCKSIZE;
    if (length == 0 || length % h != 0 || length / h > 0xffffffffu || length > 0xffffffffu / 8) {
        throw std::invalid_argument("SP 800-108 output length must be a positive multiple of 16");
    }
    Bytes out;
    out.reserve(length);
    for (std::uint32_t i = 1; out.size() < length; ++i) {
        Bytes input;
        put_be32(input, i);
        input.insert(input.end(), label.begin(), label.end());
        input.push_back(0x00);
        input.insert(input.end(), context.begin(), context.end());
        put_be32(input, static_cast<std::uint32_t>(length * 8));
        const Bytes block = aes256_cmac(key, input);
        out.insert(out.end(), block.begin(), block.end());
    }
    return out;
}

Bytes inline_encryption_key(ByteView master_key) {
    require_master(master_key);
    static const Bytes ctx = context("inline encryption key",
                                     {0, 0, 0, 0, 0, 0, 0x02, 0x43, 0x00, 0x82, 0x50, 0, 0, 0, 0});
    return kdf_counter_cmac(master_key, kLabel, ctx, kInlineKeyBytes);
}

Bytes sw_secret(ByteView master_key) {
    require_master(master_key);
    static const Bytes ctx = context(
        "raw secret", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x17, 0x00, 0x80, 0x50, 0, 0, 0, 0});
    return kdf_counter_cmac(master_key, kLabel, ctx, kSwSecretBytes);
}

Bytes key_identifier(ByteView master_key) {
    return fscrypt::fscrypt_hkdf(sw_secret(master_key),
                                 fscrypt::HkdfContext::key_identifier_for_hw_wrapped_key, {},
                                 fscrypt::kKeyIdentifierBytes);
}

fscrypt::SipKey inode_hash_key(ByteView master_key) {
    return fscrypt::inode_hash_key(sw_secret(master_key));
}

// ---- blobs --------------------------------------------------------------------------------------

namespace {

void require_aes_key(ByteView key) {
    if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
        throw std::invalid_argument("an AES key is 16, 24 or 32 bytes, not " +
                                    std::to_string(key.size()));
    }
}

void require_size(ByteView v, std::size_t n, const char* what) {
    if (v.size() != n) {
        throw std::invalid_argument(std::string(what) + " is " + std::to_string(n) +
                                    " bytes, not " + std::to_string(v.size()));
    }
}

} // namespace

// The streaming calls (key and nonce, header, data, tag). Crypto++ 8.7's one-shot
// EncryptAndAuthenticate()/DecryptAndVerify() after SetKeyWithIV() resynchronise with the nonce a
// second time, and their tags do not match the EAX paper's vectors (test_hw_wrapped.cpp).
Bytes aes_eax_seal(ByteView key, ByteView nonce, ByteView header, ByteView plaintext) {
    require_aes_key(key);
    CryptoPP::EAX<CryptoPP::AES>::Encryption eax;
    eax.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());
    eax.Update(header.data(), header.size());
    Bytes out(plaintext.size() + kBlobTagBytes);
    eax.ProcessString(out.data(), plaintext.data(), plaintext.size());
    eax.TruncatedFinal(out.data() + plaintext.size(), kBlobTagBytes);
    return out;
}

std::optional<Bytes> aes_eax_open(ByteView key, ByteView nonce, ByteView header, ByteView sealed) {
    require_aes_key(key);
    if (sealed.size() < kBlobTagBytes) {
        return std::nullopt;
    }
    const std::size_t n = sealed.size() - kBlobTagBytes;
    CryptoPP::EAX<CryptoPP::AES>::Decryption eax;
    eax.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());
    eax.Update(header.data(), header.size());
    Bytes out(n);
    eax.ProcessString(out.data(), sealed.data(), n);
    if (!eax.TruncatedVerify(sealed.data() + n, kBlobTagBytes)) {
        // The plaintext of a refused blob is not returned and not kept.
        CryptoPP::SecureWipeBuffer(out.data(), out.size());
        return std::nullopt;
    }
    return out;
}

Bytes wrap(ByteView wrapping_key, BlobKind kind, ByteView nonce, ByteView master_key) {
    require_size(wrapping_key, kWrappingKeyBytes, "a wrapping key");
    require_size(nonce, kBlobNonceBytes, "a blob nonce");
    require_master(master_key);
    // Sized once and filled in place: GCC 12 at -O3 warns (-Warray-bounds, a false positive)
    // about inserting into a vector built from a 4-byte initializer list.
    const std::array<std::uint8_t, kBlobHeaderBytes> header{kBlobMagic, kBlobVersion,
                                                            static_cast<std::uint8_t>(kind), 0};
    const Bytes sealed = aes_eax_seal(wrapping_key, nonce, header, master_key);
    Bytes blob(header.size() + nonce.size() + sealed.size());
    auto at = std::copy(header.begin(), header.end(), blob.begin());
    at = std::copy(nonce.begin(), nonce.end(), at);
    std::copy(sealed.begin(), sealed.end(), at);
    return blob;
}

std::string_view to_string(UnwrapError e) {
    switch (e) {
    case UnwrapError::length:
        return "length";
    case UnwrapError::magic:
        return "magic";
    case UnwrapError::version:
        return "version";
    case UnwrapError::kind:
        return "kind";
    case UnwrapError::reserved:
        return "reserved";
    case UnwrapError::tag:
        return "tag";
    }
    return "?";
}

Unwrapped unwrap_checked(ByteView wrapping_key, BlobKind expected, ByteView blob) {
    require_size(wrapping_key, kWrappingKeyBytes, "a wrapping key");
    Unwrapped r;
    if (blob.size() != kBlobBytes) {
        r.error = UnwrapError::length;
    } else if (blob[0] != kBlobMagic) {
        r.error = UnwrapError::magic;
    } else if (blob[1] != kBlobVersion) {
        r.error = UnwrapError::version;
    } else if (blob[2] != static_cast<std::uint8_t>(expected)) {
        r.error = UnwrapError::kind;
    } else if (blob[3] != 0) {
        r.error = UnwrapError::reserved;
    } else {
        r.master_key = aes_eax_open(wrapping_key, blob.subspan(kBlobHeaderBytes, kBlobNonceBytes),
                                    blob.first(kBlobHeaderBytes),
                                    blob.subspan(kBlobHeaderBytes + kBlobNonceBytes));
        r.error = UnwrapError::tag;
    }
    return r;
}

std::optional<Bytes> unwrap(ByteView wrapping_key, BlobKind expected, ByteView blob) {
    return unwrap_checked(wrapping_key, expected, blob).master_key;
}

} // namespace icemu::models::hw_wrapped
