// The invariant table (invariants()) against docs/checker.md's table of invariants, and the
// guest-op vocabulary as icemu-check applies it to run.json.
#include "icemu/checker/checker.hpp"
#include "icemu/guest_ops.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fstream>
#include <sstream>

using namespace icemu::checker;
using Catch::Matchers::ContainsSubstring;

namespace {

std::string trim(std::string s) {
    const auto a = s.find_first_not_of(' '), b = s.find_last_not_of(' ');
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The rows of the first table after "## Invariants": cells split on '|', outer ones dropped.
std::vector<std::vector<std::string>> doc_rows(const std::string& path) {
    std::ifstream f(path);
    REQUIRE(f);
    std::vector<std::vector<std::string>> rows;
    bool in_section = false, in_table = false;
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("## ", 0) == 0) {
            if (in_section) {
                break;
            }
            in_section = line == "## Invariants";
            continue;
        }
        if (!in_section) {
            continue;
        }
        if (line.rfind("|", 0) != 0) {
            if (in_table) {
                break; // the table ended
            }
            continue;
        }
        in_table = true;
        std::vector<std::string> cells;
        std::stringstream ss(line.substr(1));
        for (std::string c; std::getline(ss, c, '|');) {
            cells.push_back(trim(c));
        }
        rows.push_back(cells);
    }
    return rows;
}

} // namespace

TEST_CASE("docs/checker.md's table of invariants is the checker's table", "[checker][docs]") {
    const auto rows = doc_rows(ICEMU_DOCS_DIR "/checker.md");
    REQUIRE(rows.size() >= 2);
    const std::vector<std::string> header = {
        "#", "name", "title", "kernel", "check", "level", "not applicable when"};
    CHECK(rows[0] == header);
    const auto table = invariants();
    REQUIRE(rows.size() - 2 == table.size()); // header and |---| lines
    for (std::size_t i = 0; i < table.size(); ++i) {
        const Invariant& inv = table[i];
        const auto& r = rows[i + 2];
        INFO("docs row " << i << ": " << r.at(0) << " " << r.at(1));
        REQUIRE(r.size() == header.size());
        CHECK(r[0] == std::to_string(inv.number));
        CHECK(r[1] == "`" + std::string(inv.name) + "`");
        CHECK(r[2] == inv.title);
        CHECK(r[3] == inv.kernel);
        CHECK_FALSE(r[4].empty());
        CHECK(r[5] == inv.level);
        CHECK(r[6] == inv.not_applicable);
    }
}

TEST_CASE("the invariant table drives the verdicts: one per row, in order, named by it",
          "[checker]") {
    Inputs in;
    in.run = {{"hello", {{"release", "7.3.4"}}}, {"steps", json::array()}};
    const auto v = check(in);
    const auto table = invariants();
    REQUIRE(v.size() == table.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        CHECK(v[i].invariant == table[i].number);
        CHECK(v[i].name == table[i].name);
        CHECK(v[i].title == table[i].title);
        CHECK(table[i].number == static_cast<int>(i));
    }
}

TEST_CASE("a run.json step whose op is outside the guest-op vocabulary is rejected",
          "[checker][negative]") {
    auto run_with = [](const std::string& op) {
        Inputs in;
        in.run = {
            {"hello", {{"release", "7.3.4"}}},
            {"steps",
             {{{"index", 1},
               {"op", "sync"},
               {"request", {{"op", "sync"}}},
               {"reply", {{"ok", true}}}},
              {{"index", 2}, {"op", op}, {"request", {{"op", op}}}, {"reply", {{"ok", true}}}}}}};
        return in;
    };
    for (const char* bad : {"dm_lod", "Mount", "", "inject "}) {
        INFO(bad);
        try {
            check(run_with(bad));
            FAIL("accepted");
        } catch (const std::invalid_argument& e) {
            CHECK_THAT(e.what(),
                       ContainsSubstring("step 2: unknown op '" + std::string(bad) + "'"));
        }
    }
    for (auto op : icemu::guest_ops::kGuestOps) {
        INFO(op);
        CHECK_NOTHROW(check(run_with(std::string(op))));
    }
    for (auto op : icemu::guest_ops::kHostOps) {
        CHECK_NOTHROW(check(run_with(std::string(op))));
    }
}
