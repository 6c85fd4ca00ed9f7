#include <catch2/catch_test_macros.hpp>

#include "report.hpp"

using namespace icemu::runner;

static std::vector<ScenarioResult> sample() {
    ScenarioResult r;
    r.name = "s";
    r.seconds = 1.5;
    r.points.push_back({"s", "boot", true, "", "", 1.0});
    r.points.push_back({"s", "step 1 mkfs", false, "", "mke2fs exited with 1\nline2", 0.2});
    r.points.push_back(
        {"s", "stale key", false, "kernel bug in dm-table.c", "ufs0 slot 3 still holds key", 0});
    r.points.push_back({"s", "fixed bug", true, "old bug", "", 0});
    return {r};
}

TEST_CASE("TAP has a version, one numbered point per check, YAML diagnostics and a plan") {
    std::string t = tap_report(sample());
    CHECK(t.rfind("TAP version 13\n", 0) == 0);
    CHECK(t.find("ok 1 - s: boot\n") != std::string::npos);
    CHECK(t.find("not ok 2 - s: step 1 mkfs\n  ---\n  message: |\n    mke2fs exited with 1\n    "
                 "line2\n  ...\n") != std::string::npos);
    CHECK(t.find("not ok 3 - s: stale key # TODO kernel bug in dm-table.c\n") != std::string::npos);
    CHECK(t.find("not ok 4 - s: fixed bug (XPASS: expected to fail: old bug)\n") !=
          std::string::npos);
    CHECK(t.find("\n1..4\n") != std::string::npos);
}

TEST_CASE("an expected failure passes while failing and fails once it passes") {
    auto r = sample()[0];
    CHECK(r.points[2].ok());
    CHECK(r.points[2].is_xfail());
    CHECK_FALSE(r.points[3].ok());
    CHECK_FALSE(r.ok());
}

TEST_CASE("JUnit XML counts failures and skipped xfails and escapes text") {
    auto res = sample();
    res[0].points[1].diag = "a <b> & \"c\"";
    std::string x = junit_report(res);
    CHECK(x.find("<testsuites name=\"icemu\" tests=\"4\" failures=\"2\" skipped=\"1\">") !=
          std::string::npos);
    CHECK(x.find("<testcase classname=\"icemu.s\" name=\"boot\" time=\"1.000\"/>") !=
          std::string::npos);
    CHECK(x.find("a &lt;b&gt; &amp; &quot;c&quot;") != std::string::npos);
    CHECK(x.find("<skipped message=\"xfail: kernel bug in dm-table.c\">") != std::string::npos);
}

TEST_CASE("the summary is one line with the verdict and counts") {
    std::string s = summary_line(sample(), 12.34);
    CHECK(s.find('\n') == std::string::npos);
    CHECK(s.find("FAIL") != std::string::npos);
    CHECK(s.find("4 checks: 1 passed, 2 failed, 1 xfail") != std::string::npos);
}

TEST_CASE("a skipped point is TAP ok with a SKIP directive and JUnit skipped") {
    auto res = sample();
    res[0].points.push_back(
        TestPoint::skipped("s", "7.x only", "needs kernel >=7, the guest runs 6.12.117"));
    std::string t = tap_report(res);
    CHECK(t.find("ok 5 - s: 7.x only # SKIP needs kernel >=7, the guest runs 6.12.117\n") !=
          std::string::npos);
    std::string x = junit_report(res);
    CHECK(x.find("skipped=\"2\"") != std::string::npos);
    CHECK(x.find("<skipped message=\"needs kernel &gt;=7, the guest runs 6.12.117\"/>") !=
          std::string::npos);
    CHECK(summary_line(res, 1).find("1 xfail, 1 skipped;") != std::string::npos);
}
