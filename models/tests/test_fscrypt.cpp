// Unit tests for fscrypt.hpp: RFC 5869 (SHA-256) and a hand-rolled HMAC-SHA512 second path for
// HKDF, the SipHash paper's reference vectors, and the DUN rules of fs/crypto/inline_crypt.c.
#include "icemu/models/fscrypt.hpp"

#include "test_util.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <cryptopp/hmac.h>
#include <cryptopp/sha.h>

#include <numeric>
#include <stdexcept>

using namespace icemu::models;
using namespace icemu::models::fscrypt;
using icemu::models::test::random_bytes;

namespace {

Bytes hmac_sha512(ByteView key, ByteView msg) {
    CryptoPP::HMAC<CryptoPP::SHA512> h(key.data(), key.size());
    Bytes out(CryptoPP::SHA512::DIGESTSIZE);
    h.CalculateDigest(out.data(), msg.data(), msg.size());
    return out;
}

// Second path, written from fs/crypto/hkdf.c's description: PRK =
// HMAC(64 zero bytes, master); T(i) = HMAC(PRK, T(i-1) || "fscrypt\0" || ctx || info || i).
Bytes reference_fscrypt_hkdf(ByteView master, std::uint8_t ctx, ByteView info, std::size_t len) {
    const Bytes salt(64, 0);
    const Bytes prk = hmac_sha512(salt, master);
    Bytes out;
    Bytes prev;
    for (std::uint8_t i = 1; out.size() < len; ++i) {
        Bytes msg = prev;
        const char prefix[] = "fscrypt"; // plus its terminating NUL: 8 bytes
        msg.insert(msg.end(), prefix, prefix + 8);
        msg.push_back(ctx);
        msg.insert(msg.end(), info.begin(), info.end());
        msg.push_back(i);
        prev = hmac_sha512(prk, msg);
        out.insert(out.end(), prev.begin(), prev.end());
    }
    out.resize(len);
    return out;
}

Bytes seq_bytes(std::size_t n) {
    Bytes b(n);
    std::iota(b.begin(), b.end(), std::uint8_t{0});
    return b;
}

} // namespace

TEST_CASE("HKDF-SHA256 reproduces RFC 5869 test case 1", "[fscrypt][hkdf]") {
    const Bytes ikm(22, 0x0b);
    const Bytes salt = from_hex("000102030405060708090a0b0c");
    const Bytes info = from_hex("f0f1f2f3f4f5f6f7f8f9");
    CHECK(to_hex(hkdf(HashAlg::sha256, ikm, salt, info, 42)) ==
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("fscrypt HKDF-SHA512 matches a hand-rolled HMAC extract and expand", "[fscrypt][hkdf]") {
    const std::size_t master_len = GENERATE(32, 64);
    const std::size_t len = GENERATE(16, 64, 100, 200);
    const auto ctx = static_cast<std::uint8_t>(GENERATE(1, 2, 4, 6, 7));
    CAPTURE(master_len, len, ctx);
    const Bytes master = random_bytes(master_len);
    const Bytes info = random_bytes(17);
    CHECK(fscrypt_hkdf(master, static_cast<HkdfContext>(ctx), info, len) ==
          reference_fscrypt_hkdf(master, ctx, info, len));
}

TEST_CASE("each derivation uses its context byte and info", "[fscrypt][hkdf]") {
    const Bytes master = random_bytes(64);
    const Bytes nonce = random_bytes(16);
    const Bytes uuid = random_bytes(16);
    Bytes mode_uuid{1};
    mode_uuid.insert(mode_uuid.end(), uuid.begin(), uuid.end());
    CHECK(key_identifier(master) == reference_fscrypt_hkdf(master, 1, {}, 16));
    CHECK(per_file_key(master, nonce) == reference_fscrypt_hkdf(master, 2, nonce, 64));
    CHECK(iv_ino_lblk_64_key(master, uuid) == reference_fscrypt_hkdf(master, 4, mode_uuid, 64));
    CHECK(iv_ino_lblk_32_key(master, uuid) == reference_fscrypt_hkdf(master, 6, mode_uuid, 64));
    CHECK(iv_ino_lblk_64_key(master, uuid) != iv_ino_lblk_32_key(master, uuid));
    const Bytes hk = reference_fscrypt_hkdf(master, 7, {}, 16);
    CHECK(inode_hash_key(master) == sip_key_from_bytes(hk));
    CHECK_THROWS_AS(per_file_key(master, Bytes(15)), std::invalid_argument);
    CHECK_THROWS_AS(iv_ino_lblk_64_key(master, Bytes(8)), std::invalid_argument);
}

TEST_CASE("SipHash-2-4 reproduces the reference vectors of the SipHash paper",
          "[fscrypt][siphash]") {
    // Aumasson & Bernstein 2012, Appendix A / reference vectors.h: key = 00..0f,
    // message i = 00..(i-1); outputs as the little-endian u64.
    struct V {
        std::size_t len;
        std::uint64_t out;
    };
    const auto v =
        GENERATE(V{0, 0x726fdb47dd0e0e31}, V{1, 0x74f839c593dc67fd}, V{2, 0x0d6c8009d9a94f5a},
                 V{3, 0x85676696d7fb7e2d}, V{4, 0xcf2794e0277187b7}, V{5, 0x18765564cd99a68d},
                 V{6, 0xcbc9466e58fee3ce}, V{7, 0xab0200f58b01d137}, V{8, 0x93f5f5799a932462},
                 V{9, 0x9e0082df0ba9e4b0}, V{10, 0x7a5dbbc594ddb9f3}, V{11, 0xf4b32f46226bada7},
                 V{12, 0x751e8fbc860ee5fb}, V{15, 0xa129ca6149be45e5});
    CAPTURE(v.len);
    CHECK(siphash_2_4(sip_key_from_bytes(seq_bytes(16)), seq_bytes(v.len)) == v.out);
}

TEST_CASE("hashed_ino is the low 32 bits of SipHash over the little-endian inode number",
          "[fscrypt][siphash]") {
    // Message 00..07 of the reference vectors is le64(0x0706050403020100).
    CHECK(hashed_ino(sip_key_from_bytes(seq_bytes(16)), 0x0706050403020100ull) == 0x9a932462u);
}

TEST_CASE("the default policy's DUN is the file data-unit index", "[fscrypt][dun]") {
    CHECK(data_unit_index(5, 12, 12) == 5);
    CHECK(data_unit_index(5, 12, 9) == 40); // 512-byte data units in 4 KiB blocks
    CHECK(dun(Policy::v2_default, 40, 99, 0) == 40);
    CHECK_THROWS_AS(data_unit_index(1, 9, 12), std::invalid_argument);
}

TEST_CASE("IV_INO_LBLK_64 puts the inode number in the upper 32 bits", "[fscrypt][dun]") {
    CHECK(dun(Policy::iv_ino_lblk_64, 7, 12, 0) == 0x0000000c00000007ull);
    CHECK(dun(Policy::iv_ino_lblk_64, 0xffffffff, 0xffffffff, 0) == ~std::uint64_t{0});
    CHECK_THROWS_AS(dun(Policy::iv_ino_lblk_64, 0x100000000ull, 1, 0), std::invalid_argument);
    CHECK_THROWS_AS(dun(Policy::iv_ino_lblk_64, 0, 0x100000000ull, 0), std::invalid_argument);
}

TEST_CASE("IV_INO_LBLK_32 adds the hashed inode number modulo 2^32", "[fscrypt][dun]") {
    CHECK(dun(Policy::iv_ino_lblk_32, 3, 12, 0x10) == 0x13);
    CHECK(dun(Policy::iv_ino_lblk_32, 2, 12, 0xffffffff) == 1); // wraps in 32 bits
}

TEST_CASE("dun_bytes follows the policy and the filesystem's maximum file size", "[fscrypt][dun]") {
    CHECK(dun_bytes(Policy::iv_ino_lblk_64, 0, 12) == 8);
    CHECK(dun_bytes(Policy::iv_ino_lblk_32, 0, 12) == 4);
    // ext4 with 4 KiB blocks: s_maxbytes = 16 TiB - 4 KiB -> fls64 = 44; 44 - 12 = 32 bits.
    const std::uint64_t ext4_4k_maxbytes = (std::uint64_t{1} << 44) - 4096;
    CHECK(dun_bytes(Policy::v2_default, ext4_4k_maxbytes, 12) == 4);
    CHECK(dun_bytes(Policy::v2_default, ext4_4k_maxbytes, 9) == 5); // 35 bits
}

TEST_CASE("expected_for_block combines the policy's key and DUN", "[fscrypt]") {
    FileParams f;
    f.master_key = random_bytes(64);
    const Bytes uuid = random_bytes(16);
    std::copy(uuid.begin(), uuid.end(), f.fs_uuid.begin());
    const Bytes nonce = random_bytes(16);
    std::copy(nonce.begin(), nonce.end(), f.nonce.begin());
    f.ino = 12;
    f.policy = Policy::v2_default;
    auto e = expected_for_block(f, 3);
    CHECK(e.key == per_file_key(f.master_key, nonce));
    CHECK(e.dun == 3);
    f.policy = Policy::iv_ino_lblk_64;
    e = expected_for_block(f, 3);
    CHECK(e.key == iv_ino_lblk_64_key(f.master_key, uuid));
    CHECK(e.dun == (std::uint64_t{12} << 32 | 3));
    f.policy = Policy::iv_ino_lblk_32;
    e = expected_for_block(f, 3);
    CHECK(e.key == iv_ino_lblk_32_key(f.master_key, uuid));
    CHECK(e.dun == static_cast<std::uint32_t>(hashed_ino(inode_hash_key(f.master_key), 12) + 3u));
}

// Vectors from OpenSSL 3.0.19's CLI, a second AES implementation, run once (2026-12-02):
//   echo -n MASTER | xxd -r -p | openssl enc -aes-128-ecb -K NONCE -nopad | xxd -p -c 64
// which is keysetup_v1.c setup_v1_file_key_derived's KDF: AES-128-ECB under the file nonce of
// the master key's first 64 bytes (the AES-256-XTS key size).
TEST_CASE("v1 per-file keys are AES-128-ECB of the master key under the nonce (OpenSSL KAT)",
          "[fscrypt][v1]") {
    struct Kat {
        const char *master, *nonce, *key;
    };
    const Kat kats[] = {
        {"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
         "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
         "000102030405060708090a0b0c0d0e0f",
         "d533e59b45a153ed7e5e9c5dfcfd4aaa3ef0b1a5e3059dab21fce23a7b61c4ca"
         "adde68f7ad497268d31a0ddd5c74b08f3d2d90dcef49d32822298b878f815581"},
        {"030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc"
         "e3eaf1f8ff060d141b222930373e454c535a61686f767d848b9299a0a7aeb5bc",
         "f0e1d2c3b4a5968778695a4b3c2d1e0f",
         "1639c4236c365a5b16af495017c1af1443f38a764a1f0021a69dc23e94a3d07a"
         "12dd52e2d56295c92126429259980d7210124f67f6c725e1648dc396b5a167c1"},
    };
    for (const auto& k : kats) {
        CHECK(to_hex(v1_per_file_key(from_hex(k.master), from_hex(k.nonce))) == k.key);
    }
    // Only the first 64 bytes of a longer master key count; a shorter one is refused.
    Bytes longer = from_hex(kats[0].master);
    longer.push_back(0xee);
    CHECK(to_hex(v1_per_file_key(longer, from_hex(kats[0].nonce))) == kats[0].key);
    CHECK_THROWS_AS(v1_per_file_key(random_bytes(32), random_bytes(16)), std::invalid_argument);
    CHECK_THROWS_AS(v1_per_file_key(random_bytes(64), random_bytes(8)), std::invalid_argument);
}

TEST_CASE("a v1 policy's DUN and DUN width are the v2 default's; its key is the v1 KDF's",
          "[fscrypt][v1]") {
    FileParams f;
    f.master_key = random_bytes(64);
    const Bytes nonce = random_bytes(16);
    std::copy(nonce.begin(), nonce.end(), f.nonce.begin());
    f.ino = 13;
    f.policy = Policy::v1;
    const auto e = expected_for_block(f, 7);
    CHECK(e.key == v1_per_file_key(f.master_key, nonce));
    CHECK(e.key != per_file_key(f.master_key, nonce));
    CHECK(e.dun == 7);
    const std::uint64_t ext4_4k_maxbytes = (std::uint64_t{1} << 44) - 4096;
    CHECK(dun_bytes(Policy::v1, ext4_4k_maxbytes, 12) ==
          dun_bytes(Policy::v2_default, ext4_4k_maxbytes, 12));
}

TEST_CASE("DIRECT_KEY needs one mode for contents and names with an IV of 24+ bytes",
          "[fscrypt][direct_key]") {
    // policy.c: the AES-256-XTS pairs are valid but not DIRECT_KEY (16-byte IV, and the
    // filenames mode differs); Adiantum/Adiantum is the only valid pair that is.
    for (unsigned v : {1u, 2u}) {
        CHECK(valid_modes(v, 1, 4));
        CHECK_FALSE(direct_key_allowed(v, 1, 4));
        CHECK_FALSE(direct_key_allowed(v, 1, 1)); // not even a valid pair
        CHECK_FALSE(direct_key_allowed(v, 5, 6));
        CHECK(direct_key_allowed(v, 9, 9));
    }
    CHECK(valid_modes(2, 1, 10));
    CHECK_FALSE(valid_modes(1, 1, 10));         // HCTR2 names are v2 only
    CHECK_FALSE(direct_key_allowed(2, 10, 10)); // HCTR2 is a filenames mode only
    CHECK(mode_iv_bytes(1) == 16);
    CHECK(mode_iv_bytes(9) == 32);
}
