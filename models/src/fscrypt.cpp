// fscrypt key derivation and DUNs (see fscrypt.hpp for the rules and their sources).
#include "icemu/models/fscrypt.hpp"

#include <cryptopp/aes.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/modes.h>
#include <cryptopp/sha.h>

#include <bit>
#include <stdexcept>

namespace icemu::models::fscrypt {

namespace {

template <typename H>
Bytes hkdf_with(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
    if (length > 255 * H::DIGESTSIZE) {
        throw std::invalid_argument("HKDF output too long");
    }
    Bytes out(length);
    CryptoPP::HKDF<H> kdf;
    kdf.DeriveKey(out.data(), out.size(), ikm.data(), ikm.size(), salt.data(), salt.size(),
                  info.data(), info.size());
    return out;
}

} // namespace

Bytes hkdf(HashAlg alg, ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
    if (alg == HashAlg::sha256) {
        return hkdf_with<CryptoPP::SHA256>(ikm, salt, info, length);
    }
    return hkdf_with<CryptoPP::SHA512>(ikm, salt, info, length);
}

Bytes fscrypt_hkdf(ByteView master_key, HkdfContext context, ByteView info, std::size_t length) {
    Bytes full_info = {'f', 's', 'c', 'r', 'y', 'p', 't', 0, static_cast<std::uint8_t>(context)};
    full_info.insert(full_info.end(), info.begin(), info.end());
    const std::array<std::uint8_t, CryptoPP::SHA512::DIGESTSIZE> zero_salt{};
    return hkdf(HashAlg::sha512, master_key, zero_salt, full_info, length);
}

Bytes key_identifier(ByteView master_key) {
    return fscrypt_hkdf(master_key, HkdfContext::key_identifier, {}, kKeyIdentifierBytes);
}

Bytes per_file_key(ByteView master_key, ByteView file_nonce) {
    if (file_nonce.size() != kFileNonceBytes) {
        throw std::invalid_argument("fscrypt file nonce must be 16 bytes");
    }
    return fscrypt_hkdf(master_key, HkdfContext::per_file_enc_key, file_nonce, kAes256XtsKeyBytes);
}

Bytes v1_per_file_key(ByteView master_key, ByteView file_nonce, std::size_t key_bytes) {
    if (file_nonce.size() != kFileNonceBytes) {
        throw std::invalid_argument("fscrypt file nonce must be 16 bytes");
    }
    if (key_bytes == 0 || key_bytes % 16 != 0) {
        throw std::invalid_argument("v1 derived key size must be a multiple of 16");
    }
    if (master_key.size() < key_bytes) {
        throw std::invalid_argument("v1 policy: the master key (" +
                                    std::to_string(master_key.size()) +
                                    " bytes) is shorter than the derived key");
    }
    Bytes out(key_bytes);
    CryptoPP::ECB_Mode<CryptoPP::AES>::Encryption ecb(file_nonce.data(), file_nonce.size());
    ecb.ProcessData(out.data(), master_key.data(), key_bytes);
    return out;
}

unsigned mode_iv_bytes(std::uint8_t mode) {
    switch (mode) {
    case 1: // AES-256-XTS
    case 4: // AES-256-CTS
    case 5: // AES-128-CBC
    case 6: // AES-128-CTS
    case 7: // SM4-XTS
    case 8: // SM4-CTS
        return 16;
    case 9:  // Adiantum
    case 10: // AES-256-HCTR2
        return 32;
    default:
        return 0;
    }
}

bool valid_modes(unsigned version, std::uint8_t contents, std::uint8_t filenames) {
    const auto pair = [&](std::uint8_t c, std::uint8_t f) {
        return contents == c && filenames == f;
    };
    const bool v1 = pair(1, 4) || pair(5, 6) || pair(9, 9);
    if (version == 1) {
        return v1;
    }
    return version == 2 && (v1 || pair(1, 10) || pair(7, 8));
}

bool direct_key_allowed(unsigned version, std::uint8_t contents, std::uint8_t filenames) {
    constexpr unsigned kIvIndexAndNonce = 8 + kFileNonceBytes; // offsetofend(fscrypt_iv, nonce)
    return valid_modes(version, contents, filenames) && contents == filenames &&
           mode_iv_bytes(contents) >= kIvIndexAndNonce;
}

namespace {
Bytes per_mode_key(ByteView master_key, HkdfContext ctx, ByteView fs_uuid, std::uint8_t mode) {
    if (fs_uuid.size() != kUuidBytes) {
        throw std::invalid_argument("filesystem UUID must be 16 bytes");
    }
    Bytes info{mode};
    info.insert(info.end(), fs_uuid.begin(), fs_uuid.end());
    return fscrypt_hkdf(master_key, ctx, info, kAes256XtsKeyBytes);
}
} // namespace

Bytes iv_ino_lblk_64_key(ByteView master_key, ByteView fs_uuid, std::uint8_t mode) {
    return per_mode_key(master_key, HkdfContext::iv_ino_lblk_64_key, fs_uuid, mode);
}

Bytes iv_ino_lblk_32_key(ByteView master_key, ByteView fs_uuid, std::uint8_t mode) {
    return per_mode_key(master_key, HkdfContext::iv_ino_lblk_32_key, fs_uuid, mode);
}

namespace {
std::uint64_t load_le64(const std::uint8_t* p, std::size_t n = 8) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    }
    return v;
}

struct SipState {
    std::uint64_t v0, v1, v2, v3;
    void round() {
        v0 += v1;
        v1 = std::rotl(v1, 13);
        v1 ^= v0;
        v0 = std::rotl(v0, 32);
        v2 += v3;
        v3 = std::rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = std::rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = std::rotl(v1, 17);
        v1 ^= v2;
        v2 = std::rotl(v2, 32);
    }
    void absorb(std::uint64_t m) {
        v3 ^= m;
        round(); // c = 2 compression rounds
        round();
        v0 ^= m;
    }
};
} // namespace

SipKey sip_key_from_bytes(ByteView key16) {
    if (key16.size() != 16) {
        throw std::invalid_argument("SipHash key must be 16 bytes");
    }
    return SipKey{load_le64(key16.data()), load_le64(key16.data() + 8)};
}

std::uint64_t siphash_2_4(const SipKey& key, ByteView message) {
    SipState s{key[0] ^ 0x736f6d6570736575ull, key[1] ^ 0x646f72616e646f6dull,
               key[0] ^ 0x6c7967656e657261ull, key[1] ^ 0x7465646279746573ull};
    const std::size_t full = message.size() / 8 * 8;
    for (std::size_t i = 0; i < full; i += 8) {
        s.absorb(load_le64(message.data() + i));
    }
    // Last block: remaining bytes, and the message length (mod 256) in the top byte.
    const std::uint64_t last = load_le64(message.data() + full, message.size() - full) |
                               (static_cast<std::uint64_t>(message.size() & 0xff) << 56);
    s.absorb(last);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) { // d = 4 finalization rounds
        s.round();
    }
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

SipKey inode_hash_key(ByteView master_key) {
    return sip_key_from_bytes(fscrypt_hkdf(master_key, HkdfContext::inode_hash_key, {}, 16));
}

std::uint32_t hashed_ino(const SipKey& key, std::uint64_t ino) {
    std::array<std::uint8_t, 8> le{};
    for (unsigned i = 0; i < 8; ++i) {
        le[i] = static_cast<std::uint8_t>(ino >> (8 * i));
    }
    return static_cast<std::uint32_t>(siphash_2_4(key, le));
}

std::uint64_t data_unit_index(std::uint64_t lblk, unsigned blkbits, unsigned du_bits) {
    if (du_bits > blkbits) {
        throw std::invalid_argument("fscrypt data units cannot exceed the block size");
    }
    return lblk << (blkbits - du_bits);
}

std::uint64_t dun(Policy p, std::uint64_t du_index, std::uint64_t ino, std::uint32_t hashed) {
    switch (p) {
    case Policy::v2_default:
    case Policy::v1:
        return du_index;
    case Policy::iv_ino_lblk_64:
        if (du_index > 0xffffffffull || ino > 0xffffffffull) {
            throw std::invalid_argument("IV_INO_LBLK_64 needs ino and index <= U32_MAX");
        }
        return ino << 32 | du_index;
    case Policy::iv_ino_lblk_32:
        if (du_index > 0xffffffffull) {
            throw std::invalid_argument("IV_INO_LBLK_32 needs index <= U32_MAX");
        }
        return static_cast<std::uint32_t>(hashed + static_cast<std::uint32_t>(du_index));
    }
    return 0;
}

unsigned dun_bytes(Policy p, std::uint64_t s_maxbytes, unsigned du_bits) {
    switch (p) {
    case Policy::iv_ino_lblk_64:
        return 8;
    case Policy::iv_ino_lblk_32:
        return 4;
    case Policy::v2_default:
    case Policy::v1:
        break;
    }
    const int fls = 64 - std::countl_zero(s_maxbytes - 1); // fls64
    const int bits = fls - static_cast<int>(du_bits);
    return bits <= 0 ? 0u : static_cast<unsigned>((bits + 7) / 8);
}

Expected expected_for_block(const FileParams& f, std::uint64_t lblk) {
    const std::uint64_t index = data_unit_index(lblk, f.blkbits, f.du_bits);
    switch (f.policy) {
    case Policy::v2_default:
        return {per_file_key(f.master_key, f.nonce), dun(f.policy, index, f.ino, 0)};
    case Policy::iv_ino_lblk_64:
        return {iv_ino_lblk_64_key(f.master_key, f.fs_uuid), dun(f.policy, index, f.ino, 0)};
    case Policy::v1:
        return {v1_per_file_key(f.master_key, f.nonce), dun(f.policy, index, f.ino, 0)};
    case Policy::iv_ino_lblk_32: {
        const std::uint32_t h = hashed_ino(inode_hash_key(f.master_key), f.ino);
        return {iv_ino_lblk_32_key(f.master_key, f.fs_uuid), dun(f.policy, index, f.ino, h)};
    }
    }
    throw std::invalid_argument("unknown fscrypt policy");
}

} // namespace icemu::models::fscrypt
