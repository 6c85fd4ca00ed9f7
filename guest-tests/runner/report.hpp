// Test points and their two renderings: TAP version 13 (stdout) and JUnit XML (--junit).
// An expected failure (xfail) passes while it fails and turns into a failure ("XPASS") once
// the check passes, so a fixed kernel bug cannot go unnoticed.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace icemu::runner {

struct TestPoint {
    std::string scenario;
    std::string name;
    bool passed = false; // the check itself
    std::string xfail;   // non-empty: expected to fail, with this reason
    std::string diag;    // why it failed (or what was observed)
    double seconds = 0;
    std::string skip; // non-empty: not applicable to this guest kernel (TAP "# SKIP reason")

    TestPoint() = default;
    TestPoint(std::string scenario_, std::string name_, bool passed_, std::string xfail_,
              std::string diag_, double seconds_)
        : scenario(std::move(scenario_)), name(std::move(name_)), passed(passed_),
          xfail(std::move(xfail_)), diag(std::move(diag_)), seconds(seconds_) {}
    static TestPoint skipped(std::string scenario_, std::string name_, std::string reason) {
        TestPoint p(std::move(scenario_), std::move(name_), true, "", "", 0);
        p.skip = std::move(reason);
        return p;
    }

    // The verdict after applying xfail (a skipped point passes).
    bool ok() const { return !skip.empty() || (xfail.empty() ? passed : !passed); }
    bool is_xfail() const { return skip.empty() && !xfail.empty() && !passed; }
};

struct ScenarioResult {
    std::string name;
    std::vector<TestPoint> points;
    double seconds = 0;
    std::string artifacts; // kept directory, empty if deleted
    std::string skip;      // non-empty: the scenario does not apply to the guest kernel
    bool ok() const;
};

std::string tap_line(std::size_t number, const TestPoint& p); // "ok 3 - scen: name" + YAML diag
std::string tap_report(const std::vector<ScenarioResult>& results);
std::string junit_report(const std::vector<ScenarioResult>& results);
std::string summary_line(const std::vector<ScenarioResult>& results, double seconds);
std::string xml_escape(const std::string& s);

} // namespace icemu::runner
