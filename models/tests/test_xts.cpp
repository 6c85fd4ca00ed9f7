// Unit tests for xts.hpp: IEEE 1619-2007 known answers, an independent second computation
// path (raw AES-ECB from Crypto++ + a GF(2^128) multiply-by-alpha written here), the DUN carry
// rule and the key fingerprint.
#include "icemu/models/xts.hpp"

#include "ieee1619_vectors.hpp"
#include "test_util.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cryptopp/aes.h>

#include <stdexcept>

using namespace icemu::models;
using icemu::models::test::random_bytes;
using icemu::models::test::rng;

namespace {

Bytes vector_key(const ieee1619::Vector& v) {
    Bytes k = from_hex(v.key1);
    Bytes k2 = from_hex(v.key2);
    k.insert(k.end(), k2.begin(), k2.end());
    return k;
}

Bytes vector_plaintext(const ieee1619::Vector& v) {
    if (!v.ptx.empty()) {
        return from_hex(v.ptx);
    }
    Bytes p(512);
    for (std::size_t i = 0; i < p.size(); ++i) {
        p[i] = static_cast<std::uint8_t>(i & 0xff);
    }
    return p;
}

// Second path, written from IEEE 1619-2007 §5.2-5.3 and not sharing code with the model:
// T = AES-enc(K2, tweak) * alpha^j; C_j = AES-enc(K1, P_j ^ T) ^ T. Multiply by alpha on the
// little-endian 128-bit value: shift left by one, reduce with x^128 = x^7 + x^2 + x + 1 (0x87).
void gf_mul_alpha(std::uint8_t t[16]) {
    unsigned carry = 0;
    for (int i = 0; i < 16; ++i) {
        const unsigned next = t[i] >> 7;
        t[i] = static_cast<std::uint8_t>((t[i] << 1) | carry);
        carry = next;
    }
    if (carry) {
        t[0] ^= 0x87;
    }
}

Bytes reference_xts_encrypt(const Bytes& key, std::uint64_t dun_lo, std::uint64_t dun_hi,
                            std::size_t du, const Bytes& pt) {
    const std::size_t half = key.size() / 2;
    CryptoPP::AES::Encryption k1(key.data(), half);
    CryptoPP::AES::Encryption k2(key.data() + half, half);
    Bytes out(pt.size());
    for (std::size_t unit = 0; unit * du < pt.size(); ++unit) {
        // 128-bit DUN + unit, computed as two limbs with an explicit carry.
        std::uint64_t lo = dun_lo + unit;
        std::uint64_t hi = dun_hi + (lo < dun_lo ? 1 : 0);
        std::uint8_t t[16];
        for (int i = 0; i < 8; ++i) {
            t[i] = static_cast<std::uint8_t>(lo >> (8 * i));
            t[8 + i] = static_cast<std::uint8_t>(hi >> (8 * i));
        }
        k2.ProcessBlock(t);
        for (std::size_t b = 0; b < du; b += 16) {
            std::uint8_t x[16];
            const std::size_t off = unit * du + b;
            for (int i = 0; i < 16; ++i) {
                x[i] = pt[off + i] ^ t[i];
            }
            k1.ProcessBlock(x);
            for (int i = 0; i < 16; ++i) {
                out[off + i] = x[i] ^ t[i];
            }
            gf_mul_alpha(t);
        }
    }
    return out;
}

} // namespace

TEST_CASE("xts encryption reproduces the IEEE 1619-2007 Annex B vectors", "[xts]") {
    for (const auto& v : ieee1619::kVectors) {
        CAPTURE(v.number);
        const Bytes key = vector_key(v);
        const Bytes pt = vector_plaintext(v);
        const Bytes ct = from_hex(v.ctx);
        REQUIRE(ct.size() == pt.size());
        // Each vector is one data unit.
        CHECK(to_hex(xts_encrypt(key, v.dun, pt.size(), pt)) == to_hex(ct));
        CHECK(to_hex(xts_decrypt(key, v.dun, pt.size(), ct)) == to_hex(pt));
    }
}

TEST_CASE("the IEEE vectors also hold for the independent second computation path", "[xts]") {
    // Guards the second path itself: if it were wrong the comparisons below would be vacuous.
    for (const auto& v : ieee1619::kVectors) {
        CAPTURE(v.number);
        const Bytes pt = vector_plaintext(v);
        CHECK(to_hex(reference_xts_encrypt(vector_key(v), v.dun, 0, pt.size(), pt)) ==
              std::string(v.ctx));
    }
}

TEST_CASE("a multi-unit buffer is the concatenation of single units with DUN + i", "[xts]") {
    // IEEE vectors 10..14 use the same key and plaintext; DUNs 0xff and 0xffff are far apart,
    // so build a 2-unit buffer at DUN 0xff and check unit 0 against vector 10 and unit 1 against
    // a single-unit encryption at DUN 0x100.
    const auto& v10 = ieee1619::kVectors[4];
    REQUIRE(v10.number == 10);
    const Bytes key = vector_key(v10);
    Bytes pt = vector_plaintext(v10);
    const Bytes unit = pt;
    pt.insert(pt.end(), unit.begin(), unit.end());
    const Bytes ct = xts_encrypt(key, 0xff, 512, pt);
    CHECK(to_hex(ByteView(ct).subspan(0, 512)) == std::string(v10.ctx));
    CHECK(to_hex(ByteView(ct).subspan(512)) == to_hex(xts_encrypt(key, 0x100, 512, unit)));
}

TEST_CASE("xts matches the second path on random keys, DUNs and data unit sizes", "[xts]") {
    const std::uint64_t dun = GENERATE(std::uint64_t{0}, std::uint64_t{1},
                                       std::uint64_t{0xffffffff} - 1, std::uint64_t{0xffffffff},
                                       ~std::uint64_t{0} - 2, ~std::uint64_t{0}, std::uint64_t{7});
    const std::size_t key_size = GENERATE(kXts128KeyBytes, kXts256KeyBytes);
    const std::size_t du = GENERATE(std::size_t{512}, std::size_t{1024}, std::size_t{4096});
    CAPTURE(dun, key_size, du);
    const Bytes key = random_bytes(key_size);
    const Bytes pt = random_bytes(du * 4);
    const Bytes ct = xts_encrypt(key, dun, du, pt);
    CHECK(ct == reference_xts_encrypt(key, dun, 0, du, pt));
    CHECK(xts_decrypt(key, dun, du, ct) == pt);
    CHECK(ct != pt);
}

TEST_CASE("the tweak carries out of bit 63 into bit 64 like the kernel fallback", "[xts][dun]") {
    CHECK(tweak_for_unit(0xffffffff, 1) == U128{0x100000000, 0});
    CHECK(tweak_for_unit(~std::uint64_t{0}, 0) == U128{~std::uint64_t{0}, 0});
    CHECK(tweak_for_unit(~std::uint64_t{0}, 1) == U128{0, 1});
    CHECK(tweak_for_unit(~std::uint64_t{0}, 3) == U128{2, 1});
    const auto b = tweak_bytes(tweak_for_unit(~std::uint64_t{0}, 1));
    CHECK(to_hex(b) == "00000000000000000100000000000000");
}

TEST_CASE("with wrap64 the tweak wraps to 0 and the two rules differ only past 2^64-1",
          "[xts][dun]") {
    CHECK(tweak_for_unit(~std::uint64_t{0}, 1, DunCarry::wrap64) == U128{0, 0});
    CHECK(tweak_for_unit(5, 9, DunCarry::wrap64) == tweak_for_unit(5, 9));
    const Bytes key = random_bytes(64);
    const Bytes pt = random_bytes(2 * 512);
    const Bytes a = xts_encrypt(key, ~std::uint64_t{0}, 512, pt);
    const Bytes w = xts_encrypt(key, ~std::uint64_t{0}, 512, pt, DunCarry::wrap64);
    CHECK(ByteView(a).subspan(0, 512).size() == 512);
    CHECK(Bytes(a.begin(), a.begin() + 512) == Bytes(w.begin(), w.begin() + 512));
    CHECK(Bytes(a.begin() + 512, a.end()) != Bytes(w.begin() + 512, w.end()));
    // The wrapped second unit is the encryption at DUN 0; the fallback's at tweak 2^64.
    CHECK(Bytes(w.begin() + 512, w.end()) ==
          xts_encrypt(key, 0, 512, Bytes(pt.begin() + 512, pt.end())));
    CHECK(Bytes(a.begin() + 512, a.end()) ==
          reference_xts_encrypt(key, 0, 1, 512, Bytes(pt.begin() + 512, pt.end())));
}

TEST_CASE("xts rejects bad key sizes, data unit sizes and partial data units", "[xts]") {
    const Bytes pt(1024);
    CHECK_THROWS_AS(xts_encrypt(Bytes(48), 0, 512, pt), std::invalid_argument);
    CHECK_THROWS_AS(xts_encrypt(Bytes(16), 0, 512, pt), std::invalid_argument);
    CHECK_THROWS_AS(xts_encrypt(Bytes(64), 0, 0, pt), std::invalid_argument);
    CHECK_THROWS_AS(xts_encrypt(Bytes(64), 0, 100, pt), std::invalid_argument);
    CHECK_THROWS_AS(xts_encrypt(Bytes(64), 0, 4096, pt), std::invalid_argument);
    CHECK_NOTHROW(xts_encrypt(Bytes(64), 0, 512, pt));
}

TEST_CASE("an XtsCipher transforms in place when input and output alias", "[xts]") {
    const Bytes key = random_bytes(32);
    Bytes buf = random_bytes(2048);
    const Bytes expected = xts_encrypt(key, 42, 512, buf);
    XtsCipher c(key);
    c.encrypt(42, 512, buf, buf);
    CHECK(buf == expected);
    c.decrypt(42, 512, buf, buf);
    CHECK(buf == xts_decrypt(key, 42, 512, expected));
}

TEST_CASE("the key fingerprint is the first 8 bytes of SHA-256 in lowercase hex", "[xts][fp]") {
    // FIPS 180-2 Appendix B.1: SHA-256("abc") = ba7816bf 8f01cfea ...
    const std::string abc = "abc";
    CHECK(key_fingerprint(ByteView(reinterpret_cast<const std::uint8_t*>(abc.data()), 3)) ==
          "ba7816bf8f01cfea");
    // SHA-256 of the empty message: e3b0c442 98fc1c14 ...
    CHECK(key_fingerprint(ByteView()) == "e3b0c44298fc1c14");
}

TEST_CASE("an AES-128 key is taken from CRYPTOKEY bytes 0..15 and 32..47", "[xts][fp]") {
    std::array<std::uint8_t, 64> ck{};
    for (std::size_t i = 0; i < 64; ++i) {
        ck[i] = static_cast<std::uint8_t>(i);
    }
    const Bytes k128 = xts_key_from_cryptokey(ck, 128);
    REQUIRE(k128.size() == 32);
    CHECK(k128[0] == 0);
    CHECK(k128[15] == 15);
    CHECK(k128[16] == 32);
    CHECK(k128[31] == 47);
    CHECK(xts_key_from_cryptokey(ck, 256) == Bytes(ck.begin(), ck.end()));
    CHECK(cryptokey_from_xts_key(k128)[32] == 32);
    CHECK(cryptokey_from_xts_key(k128)[16] == 0);
    CHECK(key_fingerprint(k128) != key_fingerprint(Bytes(ck.begin(), ck.begin() + 32)));
    CHECK_THROWS_AS(xts_key_from_cryptokey(ck, 192), std::invalid_argument);
}

TEST_CASE("hex conversion round-trips and rejects malformed input", "[xts]") {
    CHECK(to_hex(from_hex("00ff10Ab")) == "00ff10ab");
    CHECK_THROWS_AS(from_hex("abc"), std::invalid_argument);
    CHECK_THROWS_AS(from_hex("zz"), std::invalid_argument);
}
