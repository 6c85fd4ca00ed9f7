// Unit tests of ./icemu fstests' report on output recorded from a real run (tests/data:
// fstests' result.xml, icemu-shell's marks.jsonl, the guest's /dev/kmsg, slices of the
// device event logs), plus the merge rule.
#include <catch2/catch_test_macros.hpp>

#include <fstream>
#include <sstream>

#include "fstests_report.hpp"

using namespace icemu::fstests;

namespace {
std::string data(const std::string& name) {
    std::ifstream in(std::string(ICEMU_FSTESTS_DATA) + "/" + name, std::ios::binary);
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
const TestResult& find(const std::vector<TestResult>& v, const std::string& name) {
    for (const auto& r : v)
        if (r.name == name)
            return r;
    FAIL("no test " << name);
    return v.front();
}
} // namespace

TEST_CASE("xunit: fstests' result.xml of a recorded run", "[fstests]") {
    auto r = parse_xunit(data("result.xml"));
    REQUIRE(r.size() == 3);
    const auto& n = find(r, "generic/548");
    CHECK(n.status == "notrun");
    CHECK(n.message == "encryption policy '-c 1 -n 4 -f 0' is unusable; probably missing kernel "
                       "crypto API support");
    const auto& f = find(r, "generic/576");
    CHECK(f.status == "fail");
    CHECK(f.message == "- output mismatch (see /mnt/icemu/results/generic/576.out.bad)");
    const auto& p = find(r, "generic/580");
    CHECK(p.status == "pass");
    CHECK(p.seconds == 29);
}

TEST_CASE("xunit: a failure with its message, entities decoded; CDATA does not count",
          "[fstests]") {
    const std::string xml =
        "<?xml version=\"1.0\"?>\n<testsuite name=\"xfstests\">\n"
        "\t<testcase classname=\"xfstests.global\" name=\"generic/582\" time=\"12\">\n"
        "\t\t<failure message=\"- output mismatch (see &quot;x&quot; &amp; y)\" "
        "type=\"TestFail\" />\n"
        "\t\t<system-out>\n<![CDATA[\n<skipped message=\"not me\"/>\n]]>\n\t\t</system-out>\n"
        "\t</testcase>\n"
        "\t<testcase classname=\"xfstests.global\" name=\"generic/583\" time=\"3\">\n"
        "\t\t<system-out>\n<![CDATA[\n<failure message=\"not me either\"/>\n]]>\n"
        "\t\t</system-out>\n\t</testcase>\n</testsuite>\n";
    auto r = parse_xunit(xml);
    REQUIRE(r.size() == 2);
    CHECK(r[0].status == "fail");
    CHECK(r[0].message == "- output mismatch (see \"x\" & y)");
    CHECK(r[0].seconds == 12);
    CHECK(r[1].status == "pass");
    CHECK_THROWS(parse_xunit("generic/548 5s ... 5s\n"));
}

TEST_CASE("marks: one window per test, from its mark to the next", "[fstests]") {
    auto marks = parse_marks(data("marks.jsonl"));
    auto w = test_windows(marks);
    REQUIRE(w.size() == 3);
    CHECK(w[0].test == "generic/548");
    CHECK(w[1].test == "generic/576");
    CHECK(w[2].test == "generic/580");
    // Contiguous: a test ends where the next begins; the last ends at "end of check".
    CHECK(w[0].end == w[1].begin);
    CHECK(w[1].end == w[2].begin);
    CHECK(w[2].end == marks.back().logs);
    CHECK(marks.back().text == "end of check");
    CHECK(w[0].begin.at("ufs0") < w[0].end.at("ufs0"));
    CHECK_THROWS(parse_marks("{\"mark\": 3}\n"));
}

TEST_CASE("marks: a test with no mark after it is open-ended (the guest stopped in it)",
          "[fstests]") {
    auto w = test_windows(parse_marks("{\"mark\":\"run xfstest generic/001\",\"t\":1,"
                                      "\"logs\":{\"ufs0\":100}}\n"));
    REQUIRE(w.size() == 1);
    CHECK(w[0].end.at("ufs0") == UINT64_MAX);
}

TEST_CASE("kernel log: split at check's markers; fscrypt's native and fallback lines",
          "[fstests]") {
    auto k = split_kernel_log(data("dmesg.txt"));
    REQUIRE(k.count("generic/548"));
    REQUIRE(k.count("generic/580"));
    CHECK(k.at("generic/580").native == std::vector<std::string>{"AES-256-XTS"});
    CHECK(k.at("generic/580").software == std::vector<std::string>{"AES-256-CBC-CTS"});
    CHECK(k.at("generic/580").fallback.empty());
    CHECK(k.at("generic/548").native.empty());
    CHECK(k.at("generic/548").lines.front().find("run fstests generic/548 at") == 0);
    // Lines before the first test belong to none.
    for (const auto& [t, log] : k)
        for (const auto& l : log.lines)
            CHECK(l.find("Linux version") == std::string::npos);
    auto f = split_kernel_log("6,1,1,-;run fstests generic/549 at 2026-01-01 00:00:00\n"
                              "6,2,2,-;fscrypt: AES-128-CBC-ESSIV using blk-crypto-fallback\n");
    CHECK(f.at("generic/549").fallback == std::vector<std::string>{"AES-128-CBC-ESSIV"});
}

TEST_CASE("device counts: a recorded slice of generic/580's events", "[fstests]") {
    // Its key programs, evictions and crypto I/O, and five of its plain I/Os.
    auto c = count_events(data("generic-580.ufs0.events.jsonl"));
    CHECK(c.programs == 6);
    CHECK(c.program_errors == 0);
    CHECK(c.evicts == 6); // each preceded by a disarm, which is not counted again
    CHECK(c.ce_writes == 4);
    CHECK(c.ce_reads == 2);
    CHECK(c.plain_ios == 5);
    CHECK(c.refused == 0);
    CHECK_THROWS(count_events("{\"v\":1,\"seq\":0}\n"));
}

TEST_CASE("crypto path: device crypto I/O and fscrypt's lines", "[fstests]") {
    KernelLog none, nat, fb;
    nat.native = {"AES-256-XTS"};
    fb.fallback = {"AES-128-CBC-ESSIV"};
    DeviceCounts io;
    io.ce_writes = 3;
    CHECK(crypto_path(none, {}) == "-");
    CHECK(crypto_path(none, {{"ufs0", io}}) == "native");
    CHECK(crypto_path(nat, {}) == "native");
    CHECK(crypto_path(fb, {}) == "fallback");
    CHECK(crypto_path(fb, {{"ufs0", io}}) == "native+fallback");
}

TEST_CASE("merge: a device verdict fails a test fstests passed or skipped", "[fstests]") {
    Row pass;
    pass.fstests = {"generic/548", "pass", "", 5};
    pass.has_window = true;
    pass.verdicts = {{"replay", "pass", ""}, {"keys-evicted", "pass", ""}};
    merge(pass);
    CHECK(pass.status == "pass");

    Row left = pass;
    left.verdicts[1] = {"keys-evicted", "fail", "nothing mounted, yet 1 keyslots still hold a key"};
    merge(left);
    CHECK(left.status == "fail");
    CHECK(left.reason == "fstests: pass; device: keys-evicted: nothing mounted, yet 1 keyslots "
                         "still hold a key");

    Row notrun;
    notrun.fstests = {"generic/576", "notrun", "fsverity utility required", 0};
    notrun.has_window = true;
    notrun.verdicts = {{"replay", "fail", "seq 12: x"}};
    merge(notrun);
    CHECK(notrun.status == "fail");
    CHECK(notrun.reason ==
          "fstests: notrun (fsverity utility required); device: replay: seq 12: x");

    Row failed;
    failed.fstests = {"generic/582", "fail", "output mismatch", 5};
    failed.has_window = true;
    merge(failed);
    CHECK(failed.status == "fail");
    CHECK(failed.reason == "output mismatch");

    Row nowin;
    nowin.fstests = {"generic/999", "notrun", "expunged", 0};
    merge(nowin);
    CHECK(nowin.status == "notrun");
    REQUIRE(nowin.verdicts.size() == 1);
    CHECK(nowin.verdicts[0].status == "not-applicable");
}

TEST_CASE("junit: failures and skips counted, text escaped", "[fstests]") {
    Row a, b;
    a.fstests = {"generic/548", "pass", "", 5};
    a.status = "fail";
    a.reason = "device: keys-evicted: slot <0> & more";
    b.fstests = {"generic/576", "notrun", "no fsverity", 0};
    b.status = "notrun";
    b.reason = "no fsverity";
    std::string j = junit({a, b}, "fstests.ext4.ufs", 5);
    CHECK(j.find("tests=\"2\" failures=\"1\" skipped=\"1\"") != std::string::npos);
    CHECK(j.find("slot &lt;0&gt; &amp; more") != std::string::npos);
    CHECK(j.find("<skipped message=\"no fsverity\"/>") != std::string::npos);
    CHECK(xml_escape(std::string("a\x01") + "b") == "a?b");
}
