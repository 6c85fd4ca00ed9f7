// Unit tests for ufshci_crypto.hpp. Register values are written as literal numbers taken from
// the register layout of include/ufs/ufshci.h (e.g. "dword16 for a 4 KiB DU with cap 0:
// 0x80000008"), not from the model's own encoders.
#include "icemu/models/ufshci_crypto.hpp"

#include "test_util.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <stdexcept>

using namespace icemu::models;
using namespace icemu::models::ufshci;
using icemu::models::test::random_bytes;

namespace {

// Linux's ufshcd_program_key sequence (drivers/ufs/core/ufshcd-crypto.c): dword16=0, key dwords
// 0..15 (little-endian), dword17=0, dword16 last. Returns every effect of the 19 writes.
std::vector<Effect> linux_program(Engine& e, unsigned slot, const std::array<std::uint8_t, 64>& ck,
                                  std::uint32_t dw16) {
    const std::uint32_t base = 0x2000 + 0x80 * slot;
    std::vector<Effect> all;
    auto add = [&](std::vector<Effect> v) { all.insert(all.end(), v.begin(), v.end()); };
    add(e.write(base + 0x40, 0));
    for (unsigned i = 0; i < 16; ++i) {
        const std::uint32_t d = static_cast<std::uint32_t>(ck[4 * i]) |
                                static_cast<std::uint32_t>(ck[4 * i + 1]) << 8 |
                                static_cast<std::uint32_t>(ck[4 * i + 2]) << 16 |
                                static_cast<std::uint32_t>(ck[4 * i + 3]) << 24;
        add(e.write(base + 4 * i, d));
    }
    add(e.write(base + 0x44, 0));
    add(e.write(base + 0x40, dw16));
    return all;
}

std::vector<Effect> linux_evict(Engine& e, unsigned slot) {
    return linux_program(e, slot, {}, 0);
}

std::array<std::uint8_t, 64> to_cryptokey(const Bytes& xts_key) {
    std::array<std::uint8_t, 64> ck{};
    const std::size_t half = xts_key.size() / 2;
    for (std::size_t i = 0; i < half; ++i) {
        ck[i] = xts_key[i];
        ck[32 + i] = xts_key[half + i];
    }
    return ck;
}

Config two_cap_config() {
    Config c;
    c.slots = 4;
    c.caps = parse_crypto_caps("aes-xts-256:0x0f/aes-xts-128:0x08/aes-ecb-256:0x0f");
    return c;
}

} // namespace

TEST_CASE("every register field has one row in the field table", "[ufshci]") {
    for (const auto& f : kFields) {
        CHECK(&field(f.id) == &f);
    }
    CHECK(field_mask(FieldId::cfg_cfge) == 0x80000000u);
    CHECK(field_mask(FieldId::ccap_cfgptr) == 0xff000000u);
    CHECK(set_field(FieldId::cfg_capidx, 0x80000008u, 2) == 0x80000208u);
    CHECK(get_field(FieldId::cap_ks, 0x00030f00u) == 3);
}

TEST_CASE("CCAP reports the cap count, slots-1 and CFGPTR 0x20", "[ufshci]") {
    Engine e(two_cap_config());
    CHECK(e.read(0x100) == 0x20000303u); // CC=3, CFGC=3 (4 slots), CFGPTR=0x20
    CHECK(e.read(0x00) == 0x10000000u);  // CAP.CS
    Engine big(Config{256, {CryptoCap{}}, true, false});
    CHECK(big.read(0x100) == 0x2000ff01u);
    CHECK(big.bar_size() == 0x10000u); // pow2ceil(0x2000 + 256*0x80) = 0x10000
    CHECK(e.bar_size() == 0x4000u);    // pow2ceil(0x2200)
}

TEST_CASE("x-CRYPTOCAP entries encode ALGID, SDUSB and KS from the crypto-caps string",
          "[ufshci]") {
    Engine e(two_cap_config());
    CHECK(e.read(0x104) == 0x00030f00u); // AES-XTS, SDUSB 0x0f, KS 3 (256)
    CHECK(e.read(0x108) == 0x00010800u); // AES-XTS, SDUSB 0x08, KS 1 (128)
    CHECK(e.read(0x10c) == 0x00030f02u); // AES-ECB, KS 256
    CHECK(e.read(0x110) == 0u);          // past CC
    CHECK(CryptoCap::decode(0x00030f00u) == CryptoCap{AlgId::aes_xts, 0x0f, KeySize::k256});
}

TEST_CASE("crypto-caps strings parse, format back and reject malformed entries", "[ufshci]") {
    const auto caps =
        parse_crypto_caps("aes-xts-256:0x0f/bitlocker-aes-cbc-192:3/essiv-aes-cbc-512:0xFF");
    REQUIRE(caps.size() == 3);
    CHECK(caps[1] == CryptoCap{AlgId::bitlocker_aes_cbc, 3, KeySize::k192});
    CHECK(caps[2] == CryptoCap{AlgId::essiv_aes_cbc, 0xff, KeySize::k512});
    CHECK(format_crypto_caps(caps) ==
          "aes-xts-256:0x0f/bitlocker-aes-cbc-192:0x03/essiv-aes-cbc-512:0xff");
    const char* bad =
        GENERATE("", "aes-xts-256", "aes-xts:0x0f", "aes-gcm-256:0x0f", "aes-xts-64:0x0f",
                 "aes-xts-256:0x100", "aes-xts-256:zz", "aes-xts-256:0x0f/", "aes-xts-256:");
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_crypto_caps(bad), std::invalid_argument);
}

TEST_CASE("engine configs outside 1..256 slots are rejected", "[ufshci]") {
    CHECK_THROWS_AS(Engine(Config{0, {CryptoCap{}}, true, false}), std::invalid_argument);
    CHECK_THROWS_AS(Engine(Config{257, {CryptoCap{}}, true, false}), std::invalid_argument);
    CHECK_NOTHROW(Engine(Config{1, {CryptoCap{}}, true, false}));
}

TEST_CASE("HCE latches CGE from every write and reads it back", "[ufshci]") {
    Engine e(Config{});
    CHECK(e.read(0x34) == 0);
    auto fx = e.write(0x34, 0x3);
    REQUIRE(fx.size() == 1);
    CHECK(std::get<events::Enable>(fx[0]) == events::Enable{true, true});
    CHECK(e.read(0x34) == 0x3);
    CHECK(e.cge());
    e.write(0x34, 0x1); // bit1 cleared by a later write
    CHECK(e.read(0x34) == 0x1);
    CHECK_FALSE(e.cge());
    e.write(0x34, 0x3); // Intel-style read-modify-write HCE |= 2 after enable
    CHECK(e.cge());
    CHECK(e.write(0x34, 0x3).empty()); // nothing changed: no event
}

TEST_CASE("Linux's 19-write program sequence arms a valid slot", "[ufshci]") {
    Engine e(two_cap_config());
    const Bytes key = random_bytes(64);
    const auto fx = linux_program(e, 2, to_cryptokey(key), 0x80000008u); // 4 KiB, cap 0
    REQUIRE(fx.size() == 1); // the first dword16=0 write on a disarmed slot logs nothing
    const auto& p = std::get<events::Program>(fx[0]);
    CHECK(p.slot == 2);
    CHECK(p.capidx == 0);
    CHECK(p.dusize == 4096);
    CHECK(p.ok);
    CHECK(p.error.empty());
    CHECK(p.key_fp == key_fingerprint(key));
    CHECK_FALSE(p.key.has_value());
    CHECK(e.slot(2).valid());
    CHECK(e.slot(2).key == key);
}

TEST_CASE("key dwords read as zero while dwords 16 and 17.. read back", "[ufshci]") {
    Engine e(two_cap_config());
    linux_program(e, 1, to_cryptokey(random_bytes(64)), 0x80000008u);
    for (unsigned i = 0; i < 16; ++i) {
        CHECK(e.read(0x2080 + 4 * i) == 0);
    }
    CHECK(e.read(0x2080 + 0x40) == 0x80000008u);
    e.write(0x2080 + 0x48, 0xdeadbeef); // dword 18
    e.write(0x2080 + 0x7c, 0x12345678); // dword 31
    CHECK(e.read(0x2080 + 0x48) == 0xdeadbeefu);
    CHECK(e.read(0x2080 + 0x7c) == 0x12345678u);
    CHECK(e.read(0x2000 + 0x80 * 4 + 0x40) == 0); // slot 4 does not exist (4 slots)
}

TEST_CASE("an AES-128 key is read from CRYPTOKEY bytes 0..15 and 32..47", "[ufshci]") {
    Engine e(two_cap_config());
    const Bytes key = random_bytes(32);
    const auto fx = linux_program(e, 0, to_cryptokey(key), 0x80000108u); // cap 1, 4 KiB
    const auto& p = std::get<events::Program>(fx.at(0));
    CHECK(p.ok);
    CHECK(p.key_fp == key_fingerprint(key));
    CHECK(e.slot(0).key == key);
}

TEST_CASE("invalid configs arm the slot as unusable with the event log's error name", "[ufshci]") {
    struct Case {
        std::uint32_t dw16;
        std::string_view error;
    };
    const auto c = GENERATE(Case{0x80000308u, "capidx"}, // CAPIDX 3 >= CC 3
                            Case{0x80000003u, "dusize"}, // not one-hot
                            Case{0x80000000u, "dusize"}, // zero
                            Case{0x80000101u, "dusize"}, // cap 1 allows 4 KiB only
                            Case{0x80000010u, "dusize"}, // 8 KiB not in SDUSB 0x0f
                            Case{0x80000201u, "alg"});   // cap 2 is AES-ECB
    CAPTURE(c.dw16);
    Engine e(two_cap_config());
    const auto fx = linux_program(e, 0, to_cryptokey(random_bytes(64)), c.dw16);
    const auto& p = std::get<events::Program>(fx.at(0));
    CHECK_FALSE(p.ok);
    CHECK(p.error == c.error);
    // event-log.md: key_fp is "" when the key layout is unknown (capidx, alg, key-size).
    CHECK(p.key_fp.empty() == (c.error != "dusize"));
    CHECK(e.slot(0).armed);
    CHECK_FALSE(e.slot(0).valid());
    e.write(0x34, 0x3);
    const Outcome o = e.submit(Request{true, 0, 0, 0, 4096, CommandKind::write});
    CHECK(o.ocs == 0x9);
    CHECK(o.error == IoError::invalid);
    CHECK_FALSE(o.transfers);
}

TEST_CASE("a cap with an unimplemented key size fails with key-size", "[ufshci]") {
    Config c;
    c.slots = 1;
    c.caps = parse_crypto_caps("aes-xts-192:0x0f");
    Engine e(c);
    const auto fx = linux_program(e, 0, to_cryptokey(random_bytes(64)), 0x80000001u);
    CHECK(std::get<events::Program>(fx.at(0)).error == "key-size");
    CHECK(std::get<events::Program>(fx.at(0)).key_fp.empty());
}

TEST_CASE("Linux's evict sequence logs an evict, not a disarm", "[ufshci]") {
    Engine e(two_cap_config());
    linux_program(e, 3, to_cryptokey(random_bytes(64)), 0x80000008u);
    const auto fx = linux_evict(e, 3);
    // First write (dword16=0 on an armed slot) disarms; the last completes the evict.
    REQUIRE(fx.size() == 2);
    CHECK(std::get<events::Disarm>(fx[0]).slot == 3);
    CHECK(std::get<events::Evict>(fx[1]) == events::Evict{3, false});
    CHECK_FALSE(e.slot(3).armed);
}

TEST_CASE("evicting a slot that was never programmed reports was_armed false", "[ufshci]") {
    Engine e(two_cap_config());
    const auto fx = linux_evict(e, 0);
    REQUIRE(fx.size() == 1);
    CHECK(std::get<events::Evict>(fx[0]) == events::Evict{0, false});
}

TEST_CASE("CFGE=0 right after dword 17 with a non-zero key is a disarm of an armed slot",
          "[ufshci]") {
    Engine e(two_cap_config());
    const auto ck = to_cryptokey(random_bytes(64));
    linux_program(e, 0, ck, 0x80000008u);
    e.write(0x2044, 0);
    const auto fx = e.write(0x2040, 0); // key dwords still hold the key
    REQUIRE(fx.size() == 1);
    CHECK(std::get<events::Disarm>(fx[0]).slot == 0);
}

TEST_CASE("CFGE=0 after dword 17 of another slot is not an evict", "[ufshci]") {
    Engine e(two_cap_config());
    e.write(0x2080 + 0x44, 0);         // slot 1 dword 17
    CHECK(e.write(0x2040, 0).empty()); // slot 0, disarmed and not an evict
}

TEST_CASE("slots survive HCE 0->1 and are wiped on 1->0 when wipe-on-disable is on", "[ufshci]") {
    const bool wipe = GENERATE(true, false);
    Config c = two_cap_config();
    c.wipe_on_disable = wipe;
    Engine e(c);
    linux_program(e, 0, to_cryptokey(random_bytes(64)), 0x80000008u); // programmed while HCE=0
    auto fx = e.write(0x34, 0x3);
    CHECK(fx.size() == 1);
    CHECK(e.slot(0).valid());
    fx = e.write(0x34, 0x0);
    if (wipe) {
        REQUIRE(fx.size() == 2);
        CHECK(std::get<events::Enable>(fx[0]) == events::Enable{false, false});
        CHECK(std::get<events::Wipe>(fx[1]) == events::Wipe{events::WipeReason::disable, 1});
        CHECK_FALSE(e.slot(0).armed);
        CHECK(e.read(0x2040) == 0);
    } else {
        CHECK(fx.size() == 1);
        CHECK(e.slot(0).valid());
    }
}

TEST_CASE("a device reset wipes every slot and clears HCE", "[ufshci]") {
    Engine e(two_cap_config());
    linux_program(e, 0, to_cryptokey(random_bytes(64)), 0x80000008u);
    linux_program(e, 1, to_cryptokey(random_bytes(64)), 0x80000008u);
    e.write(0x34, 0x3);
    const auto fx = e.reset();
    REQUIRE(fx.size() == 1);
    CHECK(std::get<events::Wipe>(fx[0]) == events::Wipe{events::WipeReason::reset, 2});
    CHECK(e.read(0x34) == 0);
    CHECK(e.armed_count() == 0);
    CHECK(e.reset().empty()); // nothing armed: the device logs no wipe
}

TEST_CASE("CE requests get OCS 0x9 for CGE=0, bad CCI, disarmed slots and misalignment",
          "[ufshci]") {
    Engine e(two_cap_config());
    linux_program(e, 0, to_cryptokey(random_bytes(64)), 0x80000002u); // 1 KiB data units
    Request r{true, 0, 5, 0, 4096, CommandKind::write};
    CHECK(e.submit(r).error == IoError::cge); // CGE still 0
    e.write(0x34, 0x1);
    CHECK(e.submit(r).error == IoError::cge); // enabled without CGE
    e.write(0x34, 0x3);
    CHECK(e.submit(r).ocs == 0);
    r.cci = 4;
    CHECK(e.submit(r).error == IoError::cci);
    r.cci = 1;
    CHECK(e.submit(r).error == IoError::disarmed);
    r.cci = 0;
    r.offset = 512;
    CHECK(e.submit(r).error == IoError::align);
    r.offset = 1024;
    r.length = 1536;
    CHECK(e.submit(r).error == IoError::align);
    r.length = 2048;
    const Outcome ok = e.submit(r);
    CHECK(ok.ocs == 0);
    CHECK(ok.crypto);
    CHECK(ok.dusize == 1024);
    r.kind = CommandKind::other_data_out;
    CHECK(e.submit(r).error == IoError::opcode);
    r.kind = CommandKind::other;
    CHECK(e.submit(r).ocs == 0);
    CHECK_FALSE(e.submit(r).crypto);
}

TEST_CASE("requests without CE pass data through unchanged", "[ufshci]") {
    Engine e(two_cap_config());
    const Request r{false, 7, 99, 0, 4096, CommandKind::write};
    const Outcome o = e.submit(r);
    CHECK(o.ocs == 0);
    CHECK_FALSE(o.crypto);
    const Bytes data = random_bytes(4096);
    CHECK(e.medium_bytes(r, o, data) == data);
    const auto io = e.predict_io(r, o);
    CHECK(io.slot == -1);
    CHECK(io.dun == 0);
    CHECK(io.key_fp.empty());
}

TEST_CASE("injected faults fail the next CE requests with OCS 0xA and move no data", "[ufshci]") {
    Engine e(two_cap_config());
    linux_program(e, 0, to_cryptokey(random_bytes(64)), 0x80000008u);
    e.write(0x34, 0x3);
    e.inject_faults(2, true);
    const Request r{true, 0, 1, 0, 4096, CommandKind::read};
    const Request plain{false, 0, 0, 0, 4096, CommandKind::read};
    CHECK(e.submit(plain).ocs == 0); // CE=0 requests do not consume faults
    Outcome o = e.submit(r);
    CHECK(o.ocs == 0xA);
    CHECK(o.error == IoError::injected);
    CHECK(o.fatal);
    CHECK(e.medium_bytes(r, o, Bytes(4096)).empty());
    CHECK(e.predict_io(r, o).status == -1);
    CHECK(e.faults_remaining() == 1);
    CHECK(e.submit(r).ocs == 0xA);
    CHECK(e.submit(r).ocs == 0);
}

TEST_CASE("an injected fault is taken before every configuration check", "[ufshci]") {
    Engine e(two_cap_config()); // CGE=0 and no slot armed
    e.inject_faults(1);
    const Request r{true, 9, 1, 0, 4096, CommandKind::write};
    CHECK(e.submit(r).error == IoError::injected);
    CHECK(e.submit(r).error == IoError::cge);
}

TEST_CASE("CE on a data-out command other than WRITE is refused with opcode first", "[ufshci]") {
    Engine e(two_cap_config());
    e.inject_faults(1);
    const Request r{true, 0, 0, 0, 4096, CommandKind::other_data_out};
    const Outcome o = e.submit(r);
    CHECK(o.ocs == 0x9);
    CHECK(o.error == IoError::opcode);
    CHECK(e.faults_remaining() == 1); // faults apply to READ/WRITE only
    CHECK(e.predict_io(r, o).op == events::IoOp::write);
}

TEST_CASE("a refused request still reports a valid slot's data unit and key", "[ufshci]") {
    Engine e(two_cap_config());
    const Bytes key = random_bytes(64);
    linux_program(e, 0, to_cryptokey(key), 0x80000008u);
    const Request r{true, 0, 0, 0, 4096, CommandKind::write};
    const Outcome o = e.submit(r); // CGE=0
    CHECK(o.error == IoError::cge);
    CHECK(o.dusize == 4096);
    CHECK(o.key_fp == key_fingerprint(key));
    const auto io = e.predict_io(r, o);
    CHECK(io.bytes == 0);
    CHECK(io.status == -1);
    CHECK(io.key_fp == key_fingerprint(key));
}

TEST_CASE("the medium receives the XTS ciphertext of each data unit at DUN + i", "[ufshci]") {
    Engine e(two_cap_config());
    const Bytes key = random_bytes(64);
    linux_program(e, 1, to_cryptokey(key), 0x80000001u); // 512-byte data units
    e.write(0x34, 0x3);
    const Bytes data = random_bytes(4096);
    const Request w{true, 1, ~std::uint64_t{0} - 3, 8192, 4096, CommandKind::write};
    const Outcome o = e.submit(w);
    REQUIRE(o.ocs == 0);
    const Bytes medium = e.medium_bytes(w, o, data);
    REQUIRE(medium.size() == data.size());
    CHECK(medium != data);
    // Units 4..7 cross 2^64; xts.hpp (verified against IEEE 1619 and a second path) carries the
    // tweak into bit 64 like the kernel fallback.
    CHECK(medium == xts_encrypt(key, ~std::uint64_t{0} - 3, 512, data));
    CHECK(medium != xts_encrypt(key, ~std::uint64_t{0} - 3, 512, data, DunCarry::wrap64));
    Request rd = w;
    rd.kind = CommandKind::read;
    const Outcome ro = e.submit(rd);
    CHECK(e.host_bytes(rd, ro, medium) == data);
    const auto io = e.predict_io(w, o);
    CHECK(io.slot == 1);
    CHECK(io.dun == ~std::uint64_t{0} - 3);
    CHECK(io.dusize == 512);
    CHECK(io.key_fp == key_fingerprint(key));
    CHECK(io.ocs == 0);
}

TEST_CASE("raw keys appear in program events only with log_keys", "[ufshci]") {
    Config c = two_cap_config();
    c.log_keys = true;
    Engine e(c);
    const Bytes key = random_bytes(32);
    const auto fx = linux_program(e, 0, to_cryptokey(key), 0x80000108u);
    CHECK(std::get<events::Program>(fx.at(0)).key == to_hex(key));
    // A failed program logs the key as it would be used when the layout is known ...
    const auto dus = linux_program(e, 1, to_cryptokey(key), 0x80000101u);
    CHECK(std::get<events::Program>(dus.at(0)).key == to_hex(key));
    // ... and no key when it is not (cap 2 is AES-ECB).
    const auto alg = linux_program(e, 2, to_cryptokey(random_bytes(64)), 0x80000201u);
    CHECK_FALSE(std::get<events::Program>(alg.at(0)).key.has_value());
}

TEST_CASE("the realize event lists the configured caps", "[ufshci]") {
    Engine e(two_cap_config());
    const auto r = e.realize_event();
    CHECK(r.slots == 4);
    CHECK(r.cfgptr == 0x20);
    REQUIRE(r.caps.size() == 3);
    CHECK(r.caps[1] == events::CapEntry{1, 0, 8, 1});
    CHECK(r.frontend == "ufs");
}

TEST_CASE("DUSIZE codes convert to bytes only when one-hot", "[ufshci]") {
    CHECK(dusize_bytes(0x08) == 4096);
    CHECK(dusize_bytes(0x01) == 512);
    CHECK(dusize_bytes(0x80) == 65536);
    CHECK(dusize_bytes(0x03) == 0);
    CHECK(dusize_bytes(0) == 0);
    CHECK(dusize_code(4096) == 0x08);
    CHECK(dusize_code(1000) == 0);
}
