// The CE data path: ciphertext on the medium for every advertised data unit size and a range
// of DUNs and lengths, decryption on read, CE=0 reads of ciphertext, slot overwrite, PRDT
// shapes that split data units, and both queue types; the staged (whole-request) and the
// chunked path, and how each fails. Expected bytes: the model only.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>

#include "device/modelled_rig.hpp"

using namespace icemu;
using test::CryptoOptions;
using test::ModelledRig;
namespace mu = icemu::models::ufshci;

namespace {

constexpr std::uint64_t kDuns[] = {
    0, 1, 0xffffffffull, 0xfffffffffffffffeull, 0xffffffffffffffffull, 0x0123456789abcdefull};

// x-crypto-staging-size (docs/device.md "Data path"): 0 sends every CE request down the
// chunked path.
void set_staging(test::CryptoControllerSpec& spec, std::uint64_t bytes) {
    spec.ctrl.props += ",x-crypto-staging-size=" + std::to_string(bytes);
}

// The controller of `o` on the staged data path (the default) or, with staging off, on the
// chunked one.
test::CryptoControllerSpec on_path(const CryptoOptions& o, bool staged) {
    auto spec = test::crypto_controller(o);
    if (!staged) {
        set_staging(spec, 0);
    }
    return spec;
}

nlohmann::json counters(ModelledRig& r) {
    return r.rig().machine().qom_get(r.rig().qom_path(), "crypto-state")["counters"];
}

} // namespace

TEST_CASE("CE writes put the model's ciphertext on the medium for every data unit size, DUN and "
          "length",
          "[device][crypto][data]") {
    const unsigned key_bits = GENERATE(256u, 128u);
    const std::uint32_t du = GENERATE(512u, 1024u, 2048u, 4096u, 8192u, 16384u, 32768u, 65536u);
    INFO("AES-" << key_bits << "-XTS, data unit " << du);
    CryptoOptions o;
    o.caps = "aes-xts-256:0xff/aes-xts-128:0xff";
    o.slots = 4;
    o.lu_bytes = 8u << 20;
    ModelledRig r(test::crypto_controller(o));
    const std::uint8_t capidx = key_bits == 256 ? 0 : 1;
    r.program(0, 1, test::test_cryptokey(key_bits, du), du, capidx);
    REQUIRE(r.model().slot(1).valid());

    const std::uint32_t unit = std::max<std::uint32_t>(du, ufs::kLuBlockSize);
    std::uint64_t lba = 0;
    std::uint64_t seed = 100;
    for (const std::uint64_t dun : kDuns) {
        for (const std::uint32_t units : {1u, 3u}) {
            const std::size_t len = std::size_t{unit} * units;
            if (len > (1u << 20)) {
                continue;
            }
            INFO("DUN " << dun << ", " << len << " bytes at LBA " << lba);
            const auto data = test::pattern_bytes(len, ++seed);
            const ufs::CryptoFields cf{true, 1, dun};
            const auto w = r.write(0, 0, lba, data, cf);
            INFO(w.divergence);
            CHECK(w.ok());
            CHECK(w.got.ocs == ufs::ocs::kSuccess);
            // Reads with CE decrypt; CE=0 reads return the ciphertext.
            const auto blocks = static_cast<std::uint32_t>(len / ufs::kLuBlockSize);
            const auto rd = r.read(0, 0, lba, blocks, cf);
            INFO(rd.divergence);
            CHECK(rd.ok());
            CHECK(rd.got.in == data);
            const auto raw = r.read(0, 0, lba, blocks, {});
            INFO(raw.divergence);
            CHECK(raw.ok());
            CHECK(raw.got.in != data);
            lba += len / ufs::kLuBlockSize;
        }
    }
    CHECK(r.compare_medium(0, 0).empty());
}

TEST_CASE("the tweak of each data unit carries from the low into the high DUN dword",
          "[device][crypto][data]") {
    // 8 units of 512 bytes starting at DUN 2^32-3 cross the 32-bit boundary inside one request;
    // each unit must equal the ciphertext of a one-unit request with its own DUN.
    ModelledRig r(test::crypto_controller(CryptoOptions{"aes-xts-256:0x01", 2}));
    r.program(0, 0, test::test_cryptokey(256, 5), 512);
    const auto data = test::pattern_bytes(4096, 6);
    const std::uint64_t dun = 0xfffffffdull;
    const auto w = r.write(0, 0, 0, data, {true, 0, dun});
    INFO(w.divergence);
    CHECK(w.ok());
    const auto whole = r.rig().medium(0, 0, 0, 4096);
    for (unsigned u = 0; u < 8; ++u) {
        const auto one = models::xts_encrypt(r.model().slot(0).key, dun + u, 512,
                                             std::span(data).subspan(u * 512, 512));
        INFO("unit " << u);
        CHECK(std::equal(one.begin(), one.end(), whole.begin() + u * 512));
    }
}

TEST_CASE("the data unit after DUN 2^64-1 gets tweak 2^64 as in blk-crypto-fallback",
          "[device][crypto][data][dun-wrap]") {
    // docs/device.md "Data path" and the model (xts.hpp, DunCarry::kernel_fallback): the unit
    // after DUN 2^64-1 has tweak 2^64 (byte 8 = 0x01), as Linux's blk-crypto-fallback does.
    const std::uint32_t du = GENERATE(512u, 4096u);
    const std::uint64_t dun = GENERATE(0xffffffffffffffffull, 0xfffffffffffffffeull);
    INFO("data unit " << du << ", DUN " << dun);
    ModelledRig r(test::crypto_controller(CryptoOptions{"aes-xts-256:0x0f", 2}));
    r.program(0, 0, test::test_cryptokey(256, 50), du);
    const auto data = test::pattern_bytes(16384, 51);
    const auto w = r.write(0, 0, 8, data, {true, 0, dun});
    INFO(w.divergence);
    CHECK(w.ok());
    const auto rd = r.read(0, 0, 8, 4, {true, 0, dun});
    INFO(rd.divergence);
    CHECK(rd.ok());
    CHECK(rd.got.in == data);
}

TEST_CASE("CE writes are encrypted identically through the legacy doorbell and MCQ",
          "[device][crypto][data]") {
    const bool mcq = GENERATE(false, true);
    INFO((mcq ? "MCQ" : "legacy doorbell"));
    CryptoOptions o;
    o.mcq = mcq;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 3, test::test_cryptokey(256, 7), 4096);
    const auto data = test::pattern_bytes(64 * 1024, 8);
    const auto w = r.write(0, 0, 32, data, {true, 3, 1000});
    INFO(w.divergence);
    CHECK(w.ok());
    const auto rd = r.read(0, 0, 32, 16, {true, 3, 1000});
    INFO(rd.divergence);
    CHECK(rd.ok());
    CHECK(rd.got.in == data);
    // A plaintext write next to it stays plaintext.
    const auto plain = test::pattern_bytes(4096, 9);
    CHECK(r.write(0, 0, 60, plain, {}).ok());
    CHECK(r.rig().medium(0, 0, 60 * 4096, 4096) == plain);
}

TEST_CASE("PRDT entries of any size, including ones that split data units, give the same "
          "ciphertext",
          "[device][crypto][data]") {
    const bool mcq = GENERATE(false, true);
    const bool staged = GENERATE(true, false);
    INFO((mcq ? "MCQ" : "legacy doorbell") << (staged ? ", staged" : ", chunked"));
    CryptoOptions o;
    o.caps = "aes-xts-256:0x0f";
    o.mcq = mcq;
    ModelledRig r(on_path(o, staged));
    r.program(0, 0, test::test_cryptokey(256, 20), 1024);
    const auto data = test::pattern_bytes(5 * 4096, 21);
    using Segs = std::vector<std::uint32_t>;
    const Segs shapes[] = {
        {16, 1008, 4072, 15384}, // 16-byte pieces straddling unit boundaries
        {20480},                 // one entry
        {1, 2, 3, 20474},        // sub-AES-block entries
        {4096, 4096, 4096, 4096, 4096},
        {3000, 3000, 3000, 3000, 3000, 5480},
    };
    std::uint64_t lba = 0;
    for (const auto& segs : shapes) {
        INFO("PRDT entries " << segs.size() << ", first " << segs.front());
        const auto w = r.write(0, 0, lba, data, {true, 0, 77 + lba}, segs);
        INFO(w.divergence);
        CHECK(w.ok());
        Segs rsegs(segs.rbegin(), segs.rend());
        const auto rd = r.read(0, 0, lba, 5, {true, 0, 77 + lba}, rsegs);
        INFO(rd.divergence);
        CHECK(rd.ok());
        CHECK(rd.got.in == data);
        lba += 5;
    }
    const auto c = counters(r);
    CHECK(c["staged"] == (staged ? 10 : 0));
    CHECK(c["chunked"] == (staged ? 0 : 10));
}

TEST_CASE("CE requests that do not fit the free staging memory take the chunked path with the "
          "same bytes",
          "[device][crypto][data][staging]") {
    // 128 KiB of staging memory: requests up to 128 KiB are staged, larger ones are chunked
    // (128 KiB scsi-disk chunks). Both must match the model, whatever the PRDT shape.
    const bool mcq = GENERATE(false, true);
    const std::uint32_t du = GENERATE(512u, 4096u, 65536u);
    INFO((mcq ? "MCQ" : "legacy doorbell") << ", data unit " << du);
    CryptoOptions o;
    o.caps = "aes-xts-256:0xff";
    o.mcq = mcq;
    o.lu_bytes = 8u << 20;
    auto spec = test::crypto_controller(o);
    set_staging(spec, 128 * 1024);
    ModelledRig r(spec);
    r.program(0, 2, test::test_cryptokey(256, 70 + du), du);

    struct Size {
        std::uint32_t bytes;
        bool staged;
    };
    const Size sizes[] = {{64 * 1024, true},
                          {128 * 1024, true},
                          {192 * 1024, false},
                          {1024 * 1024, false},
                          {128 * 1024, true}}; // the granules of the first ones are free again
    std::uint64_t lba = 0;
    std::uint64_t staged = 0;
    std::uint64_t chunked = 0;
    for (const auto& sz : sizes) {
        INFO(sz.bytes << " bytes at LBA " << lba);
        const auto data = test::pattern_bytes(sz.bytes, lba + du);
        // 3000-byte PRDT entries split data units of every size.
        std::vector<std::uint32_t> segs;
        for (std::uint32_t left = sz.bytes; left;) {
            segs.push_back(std::min<std::uint32_t>(3000, left));
            left -= segs.back();
        }
        const ufs::CryptoFields cf{true, 2, 0xfffffff0ull + lba};
        const auto w = r.write(0, 0, lba, data, cf, segs);
        INFO(w.divergence);
        CHECK(w.ok());
        CHECK(w.got.ocs == ufs::ocs::kSuccess);
        const auto blocks = static_cast<std::uint32_t>(sz.bytes / ufs::kLuBlockSize);
        const auto rd = r.read(0, 0, lba, blocks, cf);
        INFO(rd.divergence);
        CHECK(rd.ok());
        CHECK(rd.got.in == data);
        (sz.staged ? staged : chunked) += 2;
        lba += blocks;
    }
    CHECK(r.compare_medium(0, 0).empty());
    const auto c = counters(r);
    CHECK(c["staged"] == staged);
    CHECK(c["chunked"] == chunked);
}

TEST_CASE("a CE READ or WRITE past the end of the LU fails in SCSI and moves no data",
          "[device][crypto][data][staging]") {
    // scsi-disk rejects the LBA range before any I/O: the staged READ must not decrypt its
    // (never filled) staging buffer into the guest's, and nothing may reach the medium.
    const bool mcq = GENERATE(false, true);
    const bool staged = GENERATE(true, false);
    INFO((mcq ? "MCQ" : "legacy doorbell") << (staged ? ", staged" : ", chunked"));
    CryptoOptions o;
    o.mcq = mcq;
    o.event_log = true;
    ModelledRig r(on_path(o, staged));
    r.program(0, 0, test::test_cryptokey(256, 80), 4096);
    const auto before = r.rig().whole_medium(0, 0);
    const std::uint32_t last = static_cast<std::uint32_t>(o.lu_bytes / ufs::kLuBlockSize);
    const ufs::CryptoFields cf{true, 0, 7};

    const auto w = r.host().write(0, last - 2, test::pattern_bytes(4 * 4096, 81), cf);
    CHECK(w.ocs == ufs::ocs::kSuccess);
    CHECK(w.scsi_status == 0x02); // CHECK CONDITION (LBA out of range)
    CHECK(test::changed_blocks(before, r.rig().whole_medium(0, 0)) == "");

    const auto rd = r.host().read(0, last - 2, 4, cf);
    CHECK(rd.ocs == ufs::ocs::kSuccess);
    CHECK(rd.scsi_status == 0x02);
    CHECK(std::all_of(rd.in.begin(), rd.in.end(), [](auto b) { return b == 0xa5; }));

    // The engine is not left holding anything: a full-size request right after works.
    const auto data = test::pattern_bytes(1u << 20, 82);
    const auto ok = r.write(0, 0, 0, data, cf);
    INFO(ok.divergence);
    CHECK(ok.ok());
    const auto back = r.read(0, 0, 0, 256, cf);
    INFO(back.divergence);
    CHECK(back.ok());
    CHECK(back.got.in == data);
}

TEST_CASE("a CE request whose PRDT points at unassigned memory fails with GENERAL_CRYPTO_ERROR "
          "and no plaintext reaches the medium",
          "[device][crypto][data][staging]") {
    const bool mcq = GENERATE(false, true);
    const bool staged = GENERATE(true, false);
    INFO((mcq ? "MCQ" : "legacy doorbell") << (staged ? ", staged" : ", chunked"));
    CryptoOptions o;
    o.mcq = mcq;
    o.event_log = true;
    ModelledRig r(on_path(o, staged));
    r.program(0, 1, test::test_cryptokey(256, 90), 4096);
    const auto before = r.rig().whole_medium(0, 0);
    const auto data = test::pattern_bytes(4 * 4096, 91);

    ufs::Request w;
    w.cdb = ufs::cdb_write10(8, 4);
    w.dir = ufs::DataDir::to_device;
    w.out = data;
    w.crypto = {true, 1, 8};
    w.unmapped_segment = 2; // the third 4 KiB entry
    w.read_back_out = true;
    const auto cw = r.host().submit(w);
    CHECK(cw.ocs == ufs::ocs::kGeneralCryptoError);
    // All four blocks are in one request (staged) or one 128 KiB chunk: nothing is written.
    CHECK(test::changed_blocks(before, r.rig().whole_medium(0, 0)) == "");
    CHECK(cw.out_after == data);

    // Put ciphertext on the medium, then read it back into a PRDT with a hole.
    const auto ok = r.write(0, 0, 8, data, {true, 1, 8});
    INFO(ok.divergence);
    REQUIRE(ok.ok());
    ufs::Request rq;
    rq.cdb = ufs::cdb_read10(8, 4);
    rq.dir = ufs::DataDir::from_device;
    rq.in_len = data.size();
    rq.crypto = {true, 1, 8};
    rq.unmapped_segment = 2;
    const auto cr = r.host().submit(rq);
    CHECK(cr.ocs == ufs::ocs::kGeneralCryptoError);
    // The entries before the hole got plaintext, the one after it nothing.
    CHECK(std::equal(data.begin(), data.begin() + 8192, cr.in.begin()));
    CHECK(std::all_of(cr.in.begin() + 12288, cr.in.end(), [](auto b) { return b == 0xa5; }));

    const auto events = r.rig().log_events(0);
    int dma_errors = 0;
    for (const auto& e : events) {
        if (const auto* io = std::get_if<models::events::Io>(&e.body); io && io->error == "dma") {
            ++dma_errors;
            CHECK(io->ocs == ufs::ocs::kGeneralCryptoError);
        }
    }
    CHECK(dma_errors == 2);
    CHECK(r.rig().machine().alive());
    // The controller goes on: the same READ with a good PRDT decrypts.
    const auto rd = r.read(0, 0, 8, 4, {true, 1, 8});
    INFO(rd.divergence);
    CHECK(rd.ok());
    CHECK(rd.got.in == data);
}

TEST_CASE("reprogramming an armed slot makes later I/O use the new key only",
          "[device][crypto][data]") {
    ModelledRig r(test::crypto_controller(CryptoOptions{"aes-xts-256:0x0f/aes-xts-128:0x0f", 2}));
    const auto data = test::pattern_bytes(8192, 30);
    r.program(0, 1, test::test_cryptokey(256, 31), 4096, 0);
    CHECK(r.write(0, 0, 0, data, {true, 1, 5}).ok());
    const auto old_fp = r.model().slot(1).key_fp;
    // Overwrite without an evict in between (blk-crypto's LRU replacement does exactly this).
    r.program(0, 1, test::test_cryptokey(128, 32), 512, 1);
    CHECK(r.model().slot(1).key_fp != old_fp);
    const auto w = r.write(0, 0, 2, data, {true, 1, 5});
    INFO(w.divergence);
    CHECK(w.ok());
    // Old ciphertext read through the new key is the model's decryption with the new key.
    const auto rd = r.read(0, 0, 0, 2, {true, 1, 5});
    INFO(rd.divergence);
    CHECK(rd.ok());
    CHECK(rd.got.in != data);
    const auto rd2 = r.read(0, 0, 2, 2, {true, 1, 5});
    CHECK(rd2.ok());
    CHECK(rd2.got.in == data);
}

TEST_CASE("WRITE AND VERIFY with CE set is encrypted like WRITE, and its log replays cleanly",
          "[device][crypto][data]") {
    CryptoOptions o;
    o.event_log = true;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 41), 4096);
    const auto data = test::pattern_bytes(2 * 4096, 42);
    ufs::Request w;
    w.cdb = {0x2e, 0, 0, 0, 0, 6, 0, 0, 2}; // WRITE AND VERIFY(10), BYTCHK 0, LBA 6, 2 blocks
    w.dir = ufs::DataDir::to_device;
    w.out = data;
    w.crypto = {true, 0, 77};
    const auto chk = r.command(0, w, mu::CommandKind::write, 6, data.size());
    INFO(chk.divergence);
    CHECK(chk.ok());
    CHECK(chk.got.ocs == ufs::ocs::kSuccess);
    CHECK(r.rig().medium(0, 0, 6 * 4096, data.size()) != data); // ciphertext on the medium
    const auto rd = r.read(0, 0, 6, 2, {true, 0, 77});
    INFO(rd.divergence);
    CHECK(rd.got.in == data);
    r.rig().machine().clock_step(1000);
    CHECK(r.replay_log(0) == "");
}

TEST_CASE("INQUIRY with CE set is executed without crypto", "[device][crypto][data]") {
    ModelledRig r(test::crypto_controller(CryptoOptions{}));
    r.program(0, 0, test::test_cryptokey(256, 40), 4096);
    ufs::Request q;
    q.cdb = ufs::cdb_inquiry(36);
    q.dir = ufs::DataDir::from_device;
    q.in_len = 36;
    const auto plain = r.host().submit(q);
    REQUIRE(plain.ocs == ufs::ocs::kSuccess);
    q.crypto = {true, 0, 9};
    const auto chk = r.command(0, q, mu::CommandKind::other, 0, 36);
    INFO(chk.divergence);
    CHECK(chk.ok());
    CHECK(chk.got.ocs == chk.expected.ocs);
    CHECK(chk.got.in == plain.in);
}

TEST_CASE("throughput of 1 MiB requests through the qtest client with CE off and on",
          "[.][bench]") {
    // Hidden (not registered with ctest): run with `icemu_device_tests "[bench]"`.
    CryptoOptions o;
    o.lu_bytes = 64u << 20;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 60), 4096);
    const auto data = test::pattern_bytes(1u << 20, 61);
    for (const bool ce : {false, true, false, true}) {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < 32; ++i) {
            const auto c = r.host().write(0, i * 256, data, {ce, 0, i * 256});
            REQUIRE(c.ocs == ufs::ocs::kSuccess);
        }
        const auto t1 = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < 32; ++i) {
            const auto c = r.host().read(0, i * 256, 256, {ce, 0, i * 256});
            REQUIRE(c.ocs == ufs::ocs::kSuccess);
        }
        const auto t2 = std::chrono::steady_clock::now();
        const auto mbps = [](auto d) {
            return 32.0 * 1048576.0 / 1e6 / std::chrono::duration<double>(d).count();
        };
        std::cout << "CE=" << ce << ": write " << mbps(t1 - t0) << " MB/s, read " << mbps(t2 - t1)
                  << " MB/s (32 x 1 MiB, qtest base64 transport)\n";
    }
}
