// Test points and their two renderings: TAP version 13 (stdout) and JUnit XML (--junit).
// An expected failure (xfail) passes while it fails and turns into a failure ("XPASS") once
// the check passes, so a fixed kernel bug cannot go unnoticed.
#pragma once
#include <string>
#include <vector>

namespace icemu::runner {

struct TestPoint {
	std::string scenario;
	std::string name;
	bool passed = false;  // the check itself
	std::string xfail;    // non-empty: expected to fail, with this reason
	std::string diag;     // why it failed (or what was observed)
	double seconds = 0;

	// The verdict after applying xfail.
	bool ok() const { return xfail.empty() ? passed : !passed; }
	bool is_xfail() const { return !xfail.empty() && !passed; }
};

struct ScenarioResult {
	std::string name;
	std::vector<TestPoint> points;
	double seconds = 0;
	std::string artifacts;  // kept directory, empty if deleted
	bool ok() const;
};

std::string tap_line(std::size_t number, const TestPoint& p);  // "ok 3 - scen: name" + YAML diag
std::string tap_report(const std::vector<ScenarioResult>& results);
std::string junit_report(const std::vector<ScenarioResult>& results);
std::string summary_line(const std::vector<ScenarioResult>& results, double seconds);
std::string xml_escape(const std::string& s);

}  // namespace icemu::runner
