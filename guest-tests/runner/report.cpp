#include "report.hpp"

#include <cstdio>
#include <sstream>

namespace icemu::runner {

bool ScenarioResult::ok() const {
    for (const auto& p : points)
        if (!p.ok())
            return false;
    return true;
}

static std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r')
            c = ' ';
    return s;
}

std::string tap_line(std::size_t number, const TestPoint& p) {
    std::ostringstream o;
    o << (p.ok() && !p.is_xfail() ? "ok " : "not ok ") << number << " - " << one_line(p.scenario)
      << ": " << one_line(p.name);
    if (!p.skip.empty())
        o << " # SKIP " << one_line(p.skip);
    else if (p.is_xfail())
        o << " # TODO " << one_line(p.xfail);
    else if (!p.xfail.empty() && p.passed)
        o << " (XPASS: expected to fail: " << one_line(p.xfail) << ")";
    o << "\n";
    if (!p.diag.empty() && (!p.ok() || p.is_xfail())) {
        o << "  ---\n  message: |\n";
        std::istringstream in(p.diag);
        std::string l;
        while (std::getline(in, l))
            o << "    " << l << "\n";
        o << "  ...\n";
    }
    return o.str();
}

std::string tap_report(const std::vector<ScenarioResult>& results) {
    std::ostringstream o;
    o << "TAP version 13\n";
    std::size_t n = 0;
    for (const auto& r : results) {
        o << "# scenario " << r.name << "\n";
        for (const auto& p : r.points)
            o << tap_line(++n, p);
    }
    o << "1.." << n << "\n";
    return o.str();
}

std::string xml_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
        case '&':
            o += "&amp;";
            break;
        case '<':
            o += "&lt;";
            break;
        case '>':
            o += "&gt;";
            break;
        case '"':
            o += "&quot;";
            break;
        case '\'':
            o += "&apos;";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t')
                o += ' ';
            else
                o += c;
        }
    }
    return o;
}

std::string junit_report(const std::vector<ScenarioResult>& results) {
    std::size_t tests = 0, failures = 0, skipped = 0;
    for (const auto& r : results)
        for (const auto& p : r.points) {
            ++tests;
            failures += !p.ok();
            skipped += p.is_xfail() || !p.skip.empty();
        }
    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    o << "<testsuites name=\"icemu\" tests=\"" << tests << "\" failures=\"" << failures
      << "\" skipped=\"" << skipped << "\">\n";
    for (const auto& r : results) {
        std::size_t f = 0, sk = 0;
        for (const auto& p : r.points) {
            f += !p.ok();
            sk += p.is_xfail() || !p.skip.empty();
        }
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.3f", r.seconds);
        o << "  <testsuite name=\"" << xml_escape(r.name) << "\" tests=\"" << r.points.size()
          << "\" failures=\"" << f << "\" skipped=\"" << sk << "\" time=\"" << secs << "\">\n";
        for (const auto& p : r.points) {
            std::snprintf(secs, sizeof secs, "%.3f", p.seconds);
            o << "    <testcase classname=\"icemu." << xml_escape(r.name) << "\" name=\""
              << xml_escape(p.name) << "\" time=\"" << secs << "\"";
            if (p.ok() && !p.is_xfail() && p.skip.empty()) {
                o << "/>\n";
                continue;
            }
            o << ">\n";
            if (!p.skip.empty())
                o << "      <skipped message=\"" << xml_escape(p.skip) << "\"/>\n";
            else if (p.is_xfail())
                o << "      <skipped message=\"xfail: " << xml_escape(p.xfail) << "\">"
                  << xml_escape(p.diag) << "</skipped>\n";
            else
                o << "      <failure message=\""
                  << xml_escape(p.passed ? "XPASS (expected to fail: " + p.xfail + ")"
                                         : p.diag.substr(0, 200))
                  << "\">" << xml_escape(p.diag) << "</failure>\n";
            o << "    </testcase>\n";
        }
        if (!r.artifacts.empty())
            o << "    <system-out>artifacts: " << xml_escape(r.artifacts) << "</system-out>\n";
        o << "  </testsuite>\n";
    }
    o << "</testsuites>\n";
    return o.str();
}

std::string summary_line(const std::vector<ScenarioResult>& results, double seconds) {
    std::size_t checks = 0, passed = 0, failed = 0, xfail = 0, sc_failed = 0, skipped = 0;
    for (const auto& r : results) {
        sc_failed += !r.ok();
        for (const auto& p : r.points) {
            ++checks;
            if (!p.skip.empty())
                ++skipped;
            else if (p.is_xfail())
                ++xfail;
            else if (p.ok())
                ++passed;
            else
                ++failed;
        }
    }
    char b[256];
    std::snprintf(b, sizeof b,
                  "icemu: %s — %zu scenario(s), %zu failed; %zu checks: %zu passed, %zu failed, "
                  "%zu xfail; %.1fs",
                  sc_failed ? "FAIL" : "PASS", results.size(), sc_failed, checks, passed, failed,
                  xfail, seconds);
    std::string out = b;
    if (skipped)
        out.insert(out.rfind(';'), ", " + std::to_string(skipped) + " skipped");
    return out;
}

} // namespace icemu::runner
