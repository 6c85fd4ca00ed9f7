// hw_wrapped.hpp: the standard hardware KDF. Crypto++ provides CMAC<AES>; the counter-mode
// construction follows NIST SP 800-108r1 §4.1 directly.
#include "icemu/models/hw_wrapped.hpp"

#include <cryptopp/aes.h>
#include <cryptopp/cmac.h>

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

} // namespace icemu::models::hw_wrapped
