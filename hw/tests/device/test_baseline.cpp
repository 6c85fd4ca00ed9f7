// The non-crypto baseline: bring-up, NOP, data round trips on both queue types, the
// PRDTL=0 crash, and crypto=off registers being upstream's.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "device/rig.hpp"

using namespace icemu;
using ufs::DataDir;

namespace {

test::ControllerSpec plain(bool mcq) {
    test::ControllerSpec s;
    s.mcq = mcq;
    s.cge = false;
    return s;
}

const char* queue_name(bool mcq) {
    return mcq ? "MCQ" : "legacy doorbell";
}

} // namespace

TEST_CASE("the UFS controller enumerates as 1b36:0013 with an 8 KiB BAR when crypto is off",
          "[device][baseline]") {
    test::Rig rig(plain(false), false);
    CHECK(rig.host().bar_size() == 0x2000);
    const std::uint32_t cap = rig.host().rreg(ufs::reg::kCap);
    CHECK((cap & 0x1f) == 31);              // NUTRS
    CHECK(((cap >> 16) & 0x7) == 7);        // NUTMRS
    CHECK((cap & ufs::bits::kCapCs) == 0u); // no crypto support advertised
    CHECK(rig.host().rreg(ufs::reg::kVer) == 0x400);
}

TEST_CASE("crypto=off leaves CCAP, x-CRYPTOCAP and HCE.CGE as upstream QEMU has them",
          "[device][baseline]") {
    test::Rig rig(plain(false), false);
    auto& h = rig.host();
    CHECK(h.rreg(ufs::reg::kCcap) == 0u);
    for (std::uint32_t off = ufs::reg::kCryptoCap0; off < 0x300; off += 4) {
        INFO("offset " << off);
        CHECK(h.rreg(off) == 0u);
    }
    // Upstream keeps only HCE bit 0.
    h.wreg(ufs::reg::kHce, ufs::bits::kHceHce | ufs::bits::kHceCge);
    CHECK(h.rreg(ufs::reg::kHce) == ufs::bits::kHceHce);
    // Writes beyond the register file are ignored and read 0 (no keyslot window).
    h.wreg(0x1ff0, 0xdeadbeef);
    CHECK(h.rreg(0x1ff0) == 0u);
}

TEST_CASE("bring-up like Linux completes link startup and a NOP OUT on either queue type",
          "[device][baseline]") {
    const bool mcq = GENERATE(false, true);
    INFO(queue_name(mcq));
    test::Rig rig(plain(mcq), false);
    rig.host().enable();
    CHECK(rig.host().nop_out() == ufs::ocs::kSuccess);
    CHECK(rig.host().nop_out() == ufs::ocs::kSuccess);
}

TEST_CASE("the first TEST UNIT READY reports UNIT ATTENTION and the next one GOOD",
          "[device][baseline]") {
    test::Rig rig(plain(false), false);
    auto& h = rig.host();
    h.enable();
    ufs::Request r;
    r.cdb = ufs::cdb_test_unit_ready();
    auto c = h.submit(r);
    CHECK(c.ocs == ufs::ocs::kSuccess);
    CHECK(c.scsi_status == 0x02); // CHECK CONDITION
    REQUIRE(c.sense.size() >= 3);
    CHECK((c.sense[2] & 0x0f) == 0x06); // UNIT ATTENTION
    c = h.submit(r);
    CHECK(c.ocs == ufs::ocs::kSuccess);
    CHECK(c.scsi_status == 0x00);
}

TEST_CASE("WRITE then READ round-trips data that lands verbatim on the backing file",
          "[device][baseline]") {
    const bool mcq = GENERATE(false, true);
    INFO(queue_name(mcq));
    test::Rig rig(plain(mcq));
    auto& h = rig.host();

    SECTION("WRITE(10)/READ(10), 4 KiB PRDT entries") {
        const auto data = test::pattern_bytes(8 * 4096, 1);
        const auto w = h.write(0, 5, data);
        CHECK(w.ocs == ufs::ocs::kSuccess);
        CHECK(w.scsi_status == 0);
        CHECK(rig.medium(0, 0, 5 * 4096, data.size()) == data);
        const auto r = h.read(0, 5, 8);
        CHECK(r.ocs == ufs::ocs::kSuccess);
        CHECK(r.in == data);
        CHECK(r.gaps_intact);
    }
    SECTION("WRITE(16)/READ(16) with odd-sized PRDT entries") {
        const auto data = test::pattern_bytes(3 * 4096, 2);
        ufs::Request w;
        w.cdb = ufs::cdb_write16(100, 3);
        w.dir = DataDir::to_device;
        w.out = data;
        w.segments = {100, 4000, 1, 8187};
        const auto wc = h.submit(w);
        CHECK(wc.ocs == ufs::ocs::kSuccess);
        CHECK(wc.scsi_status == 0);
        CHECK(rig.medium(0, 0, 100 * 4096, data.size()) == data);
        ufs::Request r;
        r.cdb = ufs::cdb_read16(100, 3);
        r.dir = DataDir::from_device;
        r.in_len = data.size();
        r.segments = {512, 12, 11764};
        const auto rc = h.submit(r);
        CHECK(rc.ocs == ufs::ocs::kSuccess);
        CHECK(rc.in == data);
        CHECK(rc.gaps_intact);
    }
    SECTION("a 1 MiB transfer") {
        const auto data = test::pattern_bytes(1u << 20, 3);
        CHECK(h.write(0, 256, data).ocs == ufs::ocs::kSuccess);
        CHECK(rig.medium(0, 0, 256 * 4096, data.size()) == data);
        CHECK(h.read(0, 256, 256).in == data);
    }
}

TEST_CASE("READ or WRITE with a data length but PRDTL=0 completes with an error and QEMU "
          "survives",
          "[device][baseline][prdtl0]") {
    const bool mcq = GENERATE(false, true);
    const bool write = GENERATE(false, true);
    INFO(queue_name(mcq) << (write ? " WRITE(10)" : " READ(10)"));
    test::Rig rig(plain(mcq));
    auto& h = rig.host();
    const auto before = rig.whole_medium(0, 0);

    ufs::Request r;
    r.cdb = write ? ufs::cdb_write10(0, 1) : ufs::cdb_read10(0, 1);
    r.dir = write ? DataDir::to_device : DataDir::from_device;
    if (write) {
        r.out = test::pattern_bytes(4096, 4);
    } else {
        r.in_len = 4096;
    }
    r.no_prdt = true;
    const auto c = h.submit(r);
    // docs/device.md "Errors": OCS 0x3 MISMATCH_DATA_BUFFER_SIZE, nothing transferred.
    CHECK(c.ocs == ufs::ocs::kMismatchDataBufSize);
    CHECK(rig.machine().alive());
    CHECK(test::changed_blocks(before, rig.whole_medium(0, 0)) == "");
    // The controller still works afterwards.
    CHECK(h.nop_out() == ufs::ocs::kSuccess);
    const auto data = test::pattern_bytes(4096, 5);
    CHECK(h.write(0, 1, data).ocs == ufs::ocs::kSuccess);
    CHECK(h.read(0, 1, 1).in == data);
}
