// Verdict output: human-readable text and JSON.
#include "icemu/checker/checker.hpp"

#include <sstream>

namespace icemu::checker {

std::string_view to_string(Status s) {
    switch (s) {
    case Status::pass:
        return "pass";
    case Status::fail:
        return "fail";
    case Status::not_applicable:
        return "not-applicable";
    }
    return "?";
}

bool any_failed(const std::vector<Verdict>& v) {
    for (const auto& x : v) {
        if (x.status == Status::fail) {
            return true;
        }
    }
    return false;
}

std::string format_text(const std::vector<Verdict>& v) {
    std::ostringstream o;
    std::size_t pass = 0, fail = 0, na = 0;
    for (const auto& x : v) {
        const char* tag = x.status == Status::pass   ? "PASS"
                          : x.status == Status::fail ? "FAIL"
                                                     : "N/A ";
        o << tag << "  " << x.invariant << " " << x.name << ": " << x.title;
        if (!x.level.empty()) {
            o << " [" << x.level << "]";
        }
        o << "\n      " << x.reason << "\n";
        for (const auto& d : x.details) {
            o << "      - " << d << "\n";
        }
        pass += x.status == Status::pass;
        fail += x.status == Status::fail;
        na += x.status == Status::not_applicable;
    }
    o << "icemu-check: " << (fail ? "FAIL" : "PASS") << " (" << pass << " pass, " << fail
      << " fail, " << na << " not applicable)\n";
    return o.str();
}

json to_json(const std::vector<Verdict>& v) {
    json arr = json::array();
    std::size_t fail = 0;
    for (const auto& x : v) {
        arr.push_back({{"invariant", x.invariant},
                       {"name", x.name},
                       {"title", x.title},
                       {"status", std::string(to_string(x.status))},
                       {"level", x.level},
                       {"reason", x.reason},
                       {"details", x.details}});
        fail += x.status == Status::fail;
    }
    return {{"tool", "icemu-check"}, {"verdicts", arr}, {"failed", fail}, {"ok", fail == 0}};
}

} // namespace icemu::checker
