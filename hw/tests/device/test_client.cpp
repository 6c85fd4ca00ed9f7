// The qtest client itself: transfers, QMP, and failure reporting (never a hang).
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "device/rig.hpp"
#include "qtest/base64.hpp"
#include "qtest/machine.hpp"

using namespace icemu;

TEST_CASE("base64 round-trips every length modulo 3", "[device][client]") {
    const auto len = GENERATE(0u, 1u, 2u, 3u, 4u, 5u, 255u, 4096u, 4097u);
    const auto data = test::pattern_bytes(len, len);
    CHECK(qtest::base64_decode(qtest::base64_encode(data)) == data);
}

TEST_CASE("guest memory written with b64write reads back identically", "[device][client]") {
    qtest::Machine m(test::bare_machine());
    const auto data = test::pattern_bytes(100000, 7);
    m.memwrite(0x200000, data);
    CHECK(m.memread(0x200000, data.size()) == data);
    m.memset(0x200000, 16, 0xee);
    const auto head = m.memread(0x200000, 17);
    CHECK(head[0] == 0xee);
    CHECK(head[15] == 0xee);
    CHECK(head[16] == data[16]);
    m.writeq(0x300000, 0x0123456789abcdefull);
    CHECK(m.readq(0x300000) == 0x0123456789abcdefull);
    CHECK(m.readl(0x300004) == 0x01234567u);
}

TEST_CASE("the virtual clock advances by the requested step", "[device][client]") {
    qtest::Machine m(test::bare_machine());
    const auto t0 = m.clock_step(1000);
    const auto t1 = m.clock_step(1000);
    CHECK(t1 - t0 == 1000);
}

TEST_CASE("QMP answers commands and reports errors as exceptions", "[device][client]") {
    qtest::Machine m(test::bare_machine());
    const auto status = m.qmp("query-status");
    CHECK(status.contains("status"));
    CHECK_THROWS_AS(m.qom_get("/machine/no-such-object", "type"), qtest::QmpError);
    CHECK(m.qom_get("/machine", "type").get<std::string>().find("q35") != std::string::npos);
}

TEST_CASE("a QEMU that refuses its command line is reported with its stderr", "[device][client]") {
    auto o = test::bare_machine();
    o.extra_args.push_back("-device");
    o.extra_args.push_back("no-such-device-icemu");
    try {
        qtest::Machine m(o);
        FAIL("QEMU started with an invalid device");
    } catch (const qtest::QemuDied& e) {
        CHECK_THAT(e.what(), Catch::Matchers::ContainsSubstring("no-such-device-icemu"));
    }
}

TEST_CASE("a QEMU killed under the client raises QemuDied instead of hanging", "[device][client]") {
    qtest::Machine m(test::bare_machine());
    m.qmp("quit");
    CHECK(m.wait_exit(std::chrono::milliseconds(10000)) >= 0);
    CHECK_THROWS_AS(m.readl(0), qtest::Error);
}
