// Unit tests for kernel_rules.hpp: release parsing, the series boundaries, each rule's range
// boundaries, unknown names and versions, and the with-fixes mode.
#include "icemu/models/kernel_rules.hpp"

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace icemu::models::kernel;

TEST_CASE("kernel releases parse strictly", "[kernel-rules]") {
    CHECK(parse_version("6.12.117") == Version{6, 12, 117});
    CHECK(parse_version("7.3.4-icemu") == Version{7, 3, 4});
    CHECK(parse_version("6.1.0-28-amd64") == Version{6, 1, 0});
    CHECK(parse_version("7.3") == Version{7, 3, 0});
    CHECK(parse_version("6.12.117+deb13") == Version{6, 12, 117});
    for (const char* bad :
         {"", "7", "v6.12", "6.12x", "6.12.117.1", "six.one", "6..1", "6.1.", " 6.1.192", "6,12"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_version(bad), std::invalid_argument);
    }
}

TEST_CASE("releases outside the supported series are errors, not defaults", "[kernel-rules]") {
    // Each series boundary: the oldest release the table was read for, and the next series.
    CHECK_THROWS_AS(rules_for("6.1.191"), std::invalid_argument);
    CHECK(rules_for("6.1.192").series() == "6.1");
    CHECK(rules_for("6.1.999").series() == "6.1");
    CHECK_THROWS_AS(rules_for("6.2.0"), std::invalid_argument);
    CHECK_THROWS_AS(rules_for("6.6.60"), std::invalid_argument); // a series nobody read
    CHECK_THROWS_AS(rules_for("6.12.116"), std::invalid_argument);
    CHECK(rules_for("6.12.117").series() == "6.12");
    CHECK_THROWS_AS(rules_for("6.13.0"), std::invalid_argument);
    CHECK_THROWS_AS(rules_for("7.2.9"), std::invalid_argument);
    CHECK(rules_for("7.3.0").series() == "7");
    CHECK(rules_for("7.99.1").series() == "7");
    CHECK_THROWS_AS(rules_for("8.0.0"), std::invalid_argument);
    CHECK_THROWS_AS(rules_for("6.12"), std::invalid_argument); // 6.12.0 < 6.12.117
    try {
        rules_for("6.6.60");
        FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("no kernel rules for 6.6.60") != std::string::npos);
    }
}

TEST_CASE("unknown rule names are errors", "[kernel-rules]") {
    const Rules r = rules_for("7.3.4");
    CHECK_THROWS_AS(r.holds("dm-passthrough-stripe"), std::invalid_argument); // misspelt
    CHECK_THROWS_AS(r.condition("!dm-passthrough-stripe"), std::invalid_argument);
    CHECK_THROWS_AS(validate_condition("dm-passthrough-linear!"), std::invalid_argument);
    CHECK_NOTHROW(validate_condition(" dm-passthrough-linear ")); // blanks around a term are fine
    CHECK_THROWS_AS(validate_condition(""), std::invalid_argument);
    CHECK_NOTHROW(validate_condition("!dm-passthrough-linear"));
    CHECK_THROWS_AS(rule("nope"), std::invalid_argument);
}

TEST_CASE("each rule's range boundaries", "[kernel-rules]") {
    // Rule::holds ranges tested at their edges directly (the series check is separate).
    const auto at = [](const char* name, Version ver) {
        const Rule& r = rule(name);
        for (const auto& g : r.holds) {
            if (g.contains(ver)) {
                return true;
            }
        }
        return false;
    };
    CHECK_FALSE(at("dm-passthrough-linear", {5, 11, 99}));
    CHECK(at("dm-passthrough-linear", {5, 12, 0}));
    CHECK_FALSE(at("dm-passthrough-flakey", {5, 11, 0}));
    CHECK(at("dm-passthrough-flakey", {5, 12, 0}));
    CHECK_FALSE(at("dm-passthrough-striped", {6, 14, 99}));
    CHECK(at("dm-passthrough-striped", {6, 15, 0}));
    CHECK_FALSE(at("dm-passthrough-thin", {7, 2, 99}));
    CHECK(at("dm-passthrough-thin", {7, 3, 0}));
    CHECK_FALSE(at("dm-inlinecrypt-target", {7, 2, 99}));
    CHECK(at("dm-inlinecrypt-target", {7, 3, 0}));
    CHECK_FALSE(at("blk-crypto-key-types", {6, 14, 99}));
    CHECK(at("blk-crypto-key-types", {6, 15, 0}));
    CHECK_FALSE(at("dm-reload-compares-key-types", {6, 14, 99}));
    CHECK(at("dm-reload-compares-key-types", {6, 15, 0}));
    CHECK_FALSE(at("sysfs-key-type-files", {6, 14, 99}));
    CHECK(at("sysfs-key-type-files", {6, 15, 0}));
    CHECK_FALSE(at("fscrypt-iv-ino-lblk-32", {5, 7, 99}));
    CHECK(at("fscrypt-iv-ino-lblk-32", {5, 8, 0}));
    CHECK_FALSE(at("fscrypt-data-unit-size-policy", {6, 6, 99}));
    CHECK(at("fscrypt-data-unit-size-policy", {6, 7, 0}));
    CHECK_FALSE(at("blk-crypto-fallback", {5, 7, 99}));
    CHECK(at("blk-crypto-fallback", {5, 8, 0}));
    CHECK_FALSE(at("ufs-mcq", {6, 12, 116}));
    CHECK(at("ufs-mcq", {6, 12, 117}));
    for (const char* r : {"mmc-cqe-write-retry-single-block", "bug-mmc-recovery-flag-sticky"}) {
        INFO(r);
        CHECK_FALSE(at(r, {6, 1, 191}));
        CHECK(at(r, {6, 1, 192}));
        CHECK_FALSE(at(r, {6, 2, 0}));
        CHECK_FALSE(at(r, {6, 12, 116}));
        CHECK(at(r, {6, 12, 117}));
        CHECK_FALSE(at(r, {6, 13, 0}));
        CHECK_FALSE(at(r, {7, 2, 99}));
        CHECK(at(r, {7, 3, 0}));
    }
    CHECK_FALSE(at("mmc-cqe-read-retry-single-block", {7, 2, 99}));
    CHECK(at("mmc-cqe-read-retry-single-block", {7, 3, 0}));
    CHECK_FALSE(at("bug-dm-evict-live-table-only", {5, 11, 99}));
    CHECK(at("bug-dm-evict-live-table-only", {5, 12, 0}));
    CHECK_FALSE(at("bug-flakey-corrupt-write-drops-crypt-ctx", {6, 4, 99}));
    CHECK(at("bug-flakey-corrupt-write-drops-crypt-ctx", {6, 5, 0}));
    CHECK_FALSE(at("bug-virtio-console-restore-asks-before-buffers", {6, 12, 999}));
    CHECK(at("bug-virtio-console-restore-asks-before-buffers", {7, 3, 0}));
}

TEST_CASE("the matrix: what each supported kernel does", "[kernel-rules]") {
    const Rules k61 = rules_for("6.1.192"), k612 = rules_for("6.12.117"), k73 = rules_for("7.3.4");
    // dm passthrough: 6.1 and 6.12 linear and flakey only; 7.x also striped, thin-pool, thin.
    for (const Rules* r : {&k61, &k612, &k73}) {
        CHECK(r->holds("dm-passthrough-linear"));
        CHECK(r->holds("dm-passthrough-flakey"));
        CHECK(r->holds("blk-crypto-fallback"));
        CHECK(r->holds("bug-dm-evict-live-table-only"));
        CHECK(r->holds("bug-mmc-recovery-flag-sticky"));
    }
    CHECK_FALSE(k61.holds("dm-passthrough-striped"));
    CHECK_FALSE(k612.holds("dm-passthrough-striped"));
    CHECK(k73.holds("dm-passthrough-striped"));
    CHECK_FALSE(k612.holds("dm-passthrough-thin"));
    CHECK(k73.holds("dm-passthrough-thin"));
    CHECK_FALSE(k612.holds("dm-reload-compares-key-types"));
    CHECK(k73.holds("dm-reload-compares-key-types"));
    CHECK_FALSE(k61.holds("ufs-mcq"));
    CHECK(k612.holds("ufs-mcq"));
    CHECK_FALSE(k61.holds("fscrypt-data-unit-size-policy"));
    CHECK(k612.holds("fscrypt-data-unit-size-policy"));
    CHECK_FALSE(k61.holds("fscrypt-iv-ino-lblk-32-refuses-sub-page-blocks"));
    CHECK_FALSE(k612.holds("fscrypt-iv-ino-lblk-32-refuses-sub-page-blocks"));
    CHECK(k73.holds("fscrypt-iv-ino-lblk-32-refuses-sub-page-blocks"));
    // (b) needs the page-cloning flakey of 6.5+; 6.1 corrupts the bio's own pages.
    CHECK_FALSE(k61.holds("bug-flakey-corrupt-write-drops-crypt-ctx"));
    CHECK(k612.holds("bug-flakey-corrupt-write-drops-crypt-ctx"));
    CHECK_FALSE(k612.holds("mmc-cqe-read-retry-single-block"));
    CHECK(k73.holds("mmc-cqe-read-retry-single-block"));
    // (d): 6.12 and 6.1 fill the control receive queue before they ask.
    CHECK_FALSE(k61.holds("bug-virtio-console-restore-asks-before-buffers"));
    CHECK_FALSE(k612.holds("bug-virtio-console-restore-asks-before-buffers"));
    CHECK(k73.holds("bug-virtio-console-restore-asks-before-buffers"));
    CHECK(k73.condition("!dm-passthrough-linear") == false);
    CHECK(k612.condition("!dm-passthrough-striped"));
}

TEST_CASE("conditions join rules with && and ||", "[kernel-rules]") {
    const Rules k612 = rules_for("6.12.117"), k73 = rules_for("7.3.4"),
                f73 = rules_for("7.3.4", true);
    const char* both = "mmc-cqe-read-retry-single-block && bug-mmc-recovery-flag-sticky";
    CHECK(k73.condition(both));
    CHECK_FALSE(k612.condition(both)); // 6.12 retries reads whole
    CHECK_FALSE(f73.condition(both));  // fixed
    const char* neither = "!mmc-cqe-read-retry-single-block || !bug-mmc-recovery-flag-sticky";
    CHECK_FALSE(k73.condition(neither));
    CHECK(k612.condition(neither));
    CHECK(f73.condition(neither));
    CHECK(k612.condition("dm-passthrough-striped || dm-passthrough-linear"));
    CHECK_FALSE(k612.condition("dm-passthrough-striped && dm-passthrough-linear"));
    for (const char* bad : {"a && ", "&& dm-passthrough-linear", "dm-passthrough-linear &",
                            "dm-passthrough-linear || !", "!!dm-passthrough-linear",
                            "dm-passthrough-linear dm-passthrough-flakey", ">=7"}) {
        INFO(bad);
        CHECK_THROWS_AS(validate_condition(bad), std::invalid_argument);
        CHECK_THROWS_AS(k73.condition(bad), std::invalid_argument);
    }
}

TEST_CASE("with fixes, every bug that has a fix is off and behaviours stay", "[kernel-rules]") {
    const Rules fixed = rules_for("7.3.4-icemu", true);
    CHECK(fixed.with_fixes());
    CHECK(fixed.describe() == "7.3.4 with fixes");
    std::set<std::string> fixes;
    for (const auto& r : rule_table()) {
        INFO(r.name);
        CHECK(!r.source.empty());
        if (r.kind == Kind::bug) {
            REQUIRE(!r.fix.empty());
            CHECK(fixes.insert(std::string(r.fix)).second); // one fix per bug
            CHECK(rules_for("7.3.4").holds(r.name));
            CHECK_FALSE(fixed.holds(r.name));
        } else {
            CHECK(r.fix.empty());
            CHECK(fixed.holds(r.name) == rules_for("7.3.4").holds(r.name));
        }
    }
}

TEST_CASE("each series' fix set holds exactly the fixes of the bugs that series has",
          "[kernel-rules]") {
    namespace fs = std::filesystem;
    const std::pair<const char*, const char*> sets[] = {
        {"7.x", "7.3.4"}, {"6.12", "6.12.117"}, {"6.1", "6.1.192"}};
    for (const auto& [dir_name, release] : sets) {
        const fs::path dir = fs::path(ICEMU_SOURCE_DIR) / "guest-tests/kernel/fixes" / dir_name;
        const Rules rules = rules_for(release);
        std::set<std::string> named;
        for (const auto& r : rule_table()) {
            if (r.kind != Kind::bug || !rules.holds(r.name)) {
                continue;
            }
            std::istringstream names{std::string(r.fix)};
            for (std::string n; names >> n;) {
                INFO(dir_name << " " << r.name << ": " << n);
                CHECK(fs::is_regular_file(dir / n));
                named.insert(n);
            }
        }
        CHECK(!named.empty());
        for (const auto& e : fs::directory_iterator(dir)) {
            INFO(e.path().string());
            CHECK(named.count(e.path().filename().string()) == 1);
        }
    }
}
