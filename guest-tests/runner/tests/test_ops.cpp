// The runner takes its op vocabulary from common/icemu/guest_ops.hpp: every guest and
// host op of that table is accepted in a scenario step, anything else is rejected.
#include <catch2/catch_test_macros.hpp>

#include "icemu/guest_ops.hpp"
#include "scenario.hpp"

using namespace icemu::runner;

namespace {
json with_op(std::string_view op) {
    json step = {{"op", std::string(op)}};
    if (op == "inject") // the strict loader wants its target (reboot takes no argument)
        step.update({{"ctrl", "ufs0"}, {"property", "crypto-fault-count"}, {"value", 1}});
    return {{"name", "t"},
            {"controllers",
             json::array(
                 {{{"id", "ufs0"}, {"lus", json::array({{{"name", "ua"}, {"size", "16M"}}})}}})},
            {"steps", json::array({step})}};
}
} // namespace

TEST_CASE("every op of the shared vocabulary is accepted; host ops are host-only") {
    for (auto op : icemu::guest_ops::kGuestOps) {
        INFO(op);
        const Scenario s = parse_scenario(with_op(op));
        CHECK(s.steps.at(0).op == op);
        CHECK_FALSE(s.steps.at(0).host_only());
    }
    for (auto op : icemu::guest_ops::kHostOps) {
        INFO(op);
        CHECK(parse_scenario(with_op(op)).steps.at(0).host_only());
    }
}

TEST_CASE("an op outside the vocabulary is rejected, naming it") {
    for (const char* bad : {"dm_lod", "Mount", "", "write_file ", "injects"}) {
        INFO(bad);
        try {
            parse_scenario(with_op(bad));
            FAIL("accepted");
        } catch (const ScenarioError& e) {
            CHECK(std::string(e.what()).find("unknown op '" + std::string(bad) + "'") !=
                  std::string::npos);
        }
    }
}
