#include <algorithm>
#include <catch2/catch_test_macros.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "scenario.hpp"

using namespace icemu::runner;

static json minimal() {
    return json::parse(R"({
	  "name": "t1",
	  "controllers": [{"id": "ufs0", "keyslots": 4, "lus": [{"name": "ua", "size": "16M"}]}],
	  "virtio_disks": [{"name": "vd", "size": 8388608}],
	  "vars": {"key": "00"},
	  "steps": [
	    {"op": "mkfs", "dev": "${ua}", "label": "mk"},
	    {"op": "add_key", "mnt": "/mnt", "key": "${key}", "save": {"kid": "identifier"}, "timeout_s": 5},
	    {"op": "inject", "ctrl": "ufs0", "property": "crypto-fault-count", "value": 1}
	  ],
	  "expect": [{"kind": "kmsg", "contains": "x", "upto": "mk", "xfail": "known bug"}]
	})");
}

TEST_CASE("a minimal scenario parses into machine, steps and expectations") {
    Scenario s = parse_scenario(minimal());
    CHECK(s.name == "t1");
    REQUIRE(s.controllers.size() == 1);
    CHECK(s.controllers[0].keyslots == 4u);
    CHECK(s.controllers[0].crypto);
    CHECK(s.controllers[0].lus[0].size == 16u << 20);
    CHECK(s.virtio_disks[0].size == 8u << 20);
    REQUIRE(s.steps.size() == 3);
    CHECK(s.steps[0].args == json{{"dev", "${ua}"}});
    CHECK(s.steps[1].save == json{{"kid", "identifier"}});
    CHECK(s.steps[1].timeout_s == 5);
    CHECK(s.steps[2].host_only());
    REQUIRE(s.expectations.size() == 1);
    CHECK(s.expectations[0].xfail == "known bug");
}

TEST_CASE("an emmc controller has one disk given by name and size, and no LUs or MCQ") {
    Scenario s = parse_scenario(json::parse(R"({
	  "name": "e",
	  "controllers": [{"id": "emmc0", "type": "emmc", "keyslots": 8, "name": "ea", "size": "64M"}],
	  "steps": [{"op": "sysinfo"}]})"));
    REQUIRE(s.controllers.size() == 1);
    const Controller& c = s.controllers[0];
    CHECK(c.is_emmc());
    CHECK(c.keyslots == 8u);
    REQUIRE(c.lus.size() == 1);
    CHECK(c.lus[0].name == "ea");
    CHECK(c.lus[0].lun == 0);
    CHECK(c.lus[0].size == 64u << 20);
    CHECK_FALSE(parse_scenario(json::parse(R"({"name": "t", "steps": [{"op": "sysinfo"}],
	  "controllers": [{"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}]}]})"))
                    .controllers[0]
                    .is_emmc());
    for (
        const char* bad :
        {R"({"id": "e0", "type": "sd", "name": "ea", "size": "64M"})",
         R"({"id": "e0", "type": "emmc", "size": "64M"})",
         R"({"id": "e0", "type": "emmc", "name": "ea", "size": "48M"})",
         R"({"id": "e0", "type": "emmc", "name": "ea", "size": "64M", "mcq": true})",
         R"({"id": "e0", "type": "emmc", "name": "ea", "size": "64M", "lus": [{"name": "ub", "size": "1M"}]})"}) {
        json j = {{"name", "t"},
                  {"controllers", json::array({json::parse(bad)})},
                  {"steps", json::array({{{"op", "sysinfo"}}})}};
        CHECK_THROWS_AS(parse_scenario(j), ScenarioError);
    }
}

TEST_CASE("step references resolve labels, numbers, boot and end") {
    Scenario s = parse_scenario(minimal());
    CHECK(step_ref(s, "boot") == 0);
    CHECK(step_ref(s, "mk") == 1);
    CHECK(step_ref(s, 2) == 2);
    CHECK(step_ref(s, "end") == 3);
    CHECK_THROWS_AS(step_ref(s, "nope"), ScenarioError);
    CHECK_THROWS_AS(step_ref(s, 9), ScenarioError);
}

TEST_CASE("invalid scenarios are rejected with a reason") {
    json j = minimal();
    j["steps"][0]["op"] = "format_c";
    CHECK_THROWS_AS(parse_scenario(j), ScenarioError);
    j = minimal();
    j["virtio_disks"][0]["name"] = "ua";
    CHECK_THROWS_AS(parse_scenario(j), ScenarioError);
    j = minimal();
    j["expect"][0]["upto"] = "missing-label";
    CHECK_THROWS_AS(parse_scenario(j), ScenarioError);
    j = minimal();
    j["controllers"][0]["caps"] = "aes-xts-256:0x0f,aes-xts-128:0x08";
    CHECK_THROWS_AS(parse_scenario(j), ScenarioError);
}

TEST_CASE("sizes accept plain bytes and K/M/G suffixes") {
    CHECK(parse_size(json(4096)) == 4096);
    CHECK(parse_size(json("512K")) == 512u << 10);
    CHECK(parse_size(json("64M")) == 64u << 20);
    CHECK(parse_size(json("1G")) == 1ull << 30);
    CHECK_THROWS(parse_size(json("12X")));
}

TEST_CASE("substitution replaces references inside strings and keeps numbers numeric") {
    Lookup vars = {{"ua", "/dev/sda"}, {"ua.sectors", 32768}, {"kid", "abcd"}};
    json in = {{"dev", "${ua}"},
               {"len", "${ua.sectors}"},
               {"params", "${ua} 0"},
               {"nested", {{"x", {"id=${kid}"}}}},
               {"n", 3}};
    json out = substitute(in, vars);
    CHECK(out["dev"] == "/dev/sda");
    CHECK(out["len"] == 32768);
    CHECK(out["params"] == "/dev/sda 0");
    CHECK(out["nested"]["x"][0] == "id=abcd");
    CHECK(out["n"] == 3);
    CHECK_THROWS_AS(substitute(json("${nope}"), vars), ScenarioError);
}

TEST_CASE("every shipped scenario file parses") {
    for (const auto& e : std::filesystem::directory_iterator(ICEMU_SCENARIO_DIR)) {
        if (e.path().extension() != ".json")
            continue;
        INFO(e.path().string());
        CHECK_NOTHROW(load_scenario(e.path().string()));
    }
}

TEST_CASE("kernel conditions name rules of the kernel rule table") {
    CHECK(kernel_matches("dm-passthrough-striped", "7.3.4"));
    CHECK_FALSE(kernel_matches("dm-passthrough-striped", "6.12.117"));
    CHECK(kernel_matches("!dm-passthrough-striped", "6.12.117-icemu"));
    CHECK_FALSE(kernel_matches("dm-passthrough-striped", "6.1.192"));
    CHECK(kernel_matches("dm-passthrough-flakey", "6.1.192"));
    CHECK_FALSE(kernel_matches("ufs-mcq", "6.1.192"));
    CHECK(kernel_matches("bug-dm-evict-live-table-only", "7.3.4"));
    CHECK_FALSE(kernel_matches("bug-dm-evict-live-table-only", "7.3.4", true)); // fixed
    CHECK(
        kernel_matches("mmc-cqe-read-retry-single-block && bug-mmc-recovery-flag-sticky", "7.3.4"));
    CHECK(kernel_matches("", "anything"));
    // The old operator form, unknown rules, misspellings and unknown kernels are errors.
    CHECK_THROWS_AS(validate_kernel_condition(">=7"), ScenarioError);
    CHECK_THROWS_AS(validate_kernel_condition("dm-passthrough-stripe"), ScenarioError);
    CHECK_THROWS_AS(validate_kernel_condition("7"), ScenarioError);
    CHECK_THROWS_AS(kernel_matches("dm-passthrough-linear", "unknown"), ScenarioError);
    CHECK_THROWS_AS(kernel_matches("dm-passthrough-linear", "6.6.60"), ScenarioError);
}

TEST_CASE(
    "kernel conditions and checker xfails are read from steps, expectations and the scenario") {
    json j = minimal();
    j["kernel"] = "dm-inlinecrypt-target";
    j["steps"][0]["kernel"] = "!dm-passthrough-striped";
    j["expect"][0]["kernel"] = "dm-passthrough-striped";
    j["expect"][0]["xfail"] = "known bug";
    j["expect"][0]["xfail_when"] = "bug-dm-evict-live-table-only";
    j["checker_xfail"] = {
        {"medium", "known bug"},
        {"keys-evicted", {{"reason", "bug (a)"}, {"when", "bug-dm-evict-live-table-only"}}}};
    Scenario s = parse_scenario(j);
    CHECK(s.kernel == "dm-inlinecrypt-target");
    CHECK(s.steps[0].kernel == "!dm-passthrough-striped");
    CHECK_FALSE(s.steps[0].args.contains("kernel")); // not sent to the guest
    CHECK(s.expectations[0].kernel == "dm-passthrough-striped");
    CHECK(s.expectations[0].xfail_when == "bug-dm-evict-live-table-only");
    CHECK(s.checker_xfail.at("medium") == "known bug");
    CHECK(s.checker_xfail_when.count("medium") == 0);
    CHECK(s.checker_xfail.at("keys-evicted") == "bug (a)");
    CHECK(s.checker_xfail_when.at("keys-evicted") == "bug-dm-evict-live-table-only");
    json k = j;
    k["steps"][1]["kernel"] = "7.x";
    CHECK_THROWS_AS(parse_scenario(k), ScenarioError);
    k = j;
    k["expect"][0]["xfail_when"] = "bug-dm-evict-live-table";
    CHECK_THROWS_AS(parse_scenario(k), ScenarioError);
    k = j;
    k["expect"][0].erase("xfail");
    CHECK_THROWS_AS(parse_scenario(k), ScenarioError); // xfail_when without xfail
    k = j;
    k["checker_xfail"]["keys-evicted"]["when"] = ">=7";
    CHECK_THROWS_AS(parse_scenario(k), ScenarioError);
    k = j;
    k["checker_xfail"]["keys-evicted"]["whn"] = "x";
    CHECK_THROWS_AS(parse_scenario(k), ScenarioError);
}

// The message of the ScenarioError that parse_scenario(j) throws ("" if it parses).
static std::string load_error(const json& j) {
    try {
        (void)parse_scenario(j);
    } catch (const ScenarioError& e) {
        return e.what();
    }
    return "";
}

static json with_expect(json e) {
    json j = minimal();
    j["expect"] = json::array({std::move(e)});
    return j;
}

TEST_CASE("the format is strict: an unknown key anywhere is a load error naming it") {
    CHECK(load_error(minimal()).empty());
    struct Case {
        const char* what;
        std::function<void(json&)> mutate;
        const char* needle;
    };
    const std::vector<Case> cases = {
        {"top level", [](json& j) { j["tiemout_s"] = 10; }, "\"tiemout_s\""},
        {"machine",
         [](json& j) {
             j["machine"] = {{"memroy", "1G"}};
         },
         "machine: unknown key \"memroy\""},
        {"controller", [](json& j) { j["controllers"][0]["keyslot"] = 2; },
         "controllers[0] (ufs0): unknown key \"keyslot\""},
        {"ufs controller with an emmc field", [](json& j) { j["controllers"][0]["size"] = "1M"; },
         "unknown key \"size\""},
        {"LU", [](json& j) { j["controllers"][0]["lus"][0]["lnu"] = 1; },
         "lus[0]: unknown key \"lnu\""},
        {"virtio disk", [](json& j) { j["virtio_disks"][0]["sise"] = 1; },
         "virtio_disks[0]: unknown key \"sise\""},
        {"step expectation",
         [](json& j) {
             j["steps"][0]["expect"] = {{"errrno", "EINVAL"}};
         },
         "steps[0] (mkfs) expect: unknown key \"errrno\""},
        {"inject step", [](json& j) { j["steps"][2]["valeu"] = 1; },
         "steps[2] (inject): unknown key \"valeu\""},
        {"inject on an unknown controller", [](json& j) { j["steps"][2]["ctrl"] = "ufs9"; },
         "unknown controller \"ufs9\""},
        {"expectation", [](json& j) { j["expect"][0]["uptp"] = "mk"; },
         "expect[0] \"kmsg\": unknown key \"uptp\""},
        {"xfail that is not a reason", [](json& j) { j["expect"][0]["xfail"] = true; },
         "\"xfail\" has the wrong type"},
        {"wrong type", [](json& j) { j["controllers"][0]["keyslots"] = "8"; },
         "controllers[0] (ufs0): \"keyslots\" has the wrong type"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        json j = minimal();
        c.mutate(j);
        const std::string err = load_error(j);
        CHECK_FALSE(err.empty());
        CHECK(err.find(c.needle) != std::string::npos);
    }
}

TEST_CASE("counter and events expectations must be able to fail") {
    const json counter = {
        {"kind", "counter"}, {"name", "c"}, {"ctrl", "ufs0"}, {"counter", "ce_writes"}, {"min", 1}};
    const json events = {{"kind", "events"},
                         {"name", "e"},
                         {"ctrls", {"ufs0"}},
                         {"match", {{"ev", "program"}}},
                         {"eq", 2}};
    CHECK(load_error(with_expect(counter)).empty());
    CHECK(load_error(with_expect(events)).empty());
    for (const json& good : {counter, events}) {
        INFO(good.dump());
        json e = good;
        // a misspelt controller list names no controller: nothing would be checked
        e.erase(e.contains("ctrl") ? "ctrl" : "ctrls");
        e["ctlrs"] = {"ufs0"};
        CHECK(load_error(with_expect(e)).find("unknown key \"ctlrs\"") != std::string::npos);
        e.erase("ctlrs");
        CHECK(load_error(with_expect(e)).find("needs \"ctrl\" or \"ctrls\"") != std::string::npos);
        // no comparator: any value would pass
        e = good;
        e.erase(e.contains("min") ? "min" : "eq");
        CHECK(load_error(with_expect(e)).find("at least one of \"eq\", \"min\", \"max\"") !=
              std::string::npos);
        // a misspelt comparator is an unknown key
        e["mn"] = 1;
        CHECK(load_error(with_expect(e)).find("unknown key \"mn\"") != std::string::npos);
        // a controller the scenario does not have
        e = good;
        e["ctrls"] = {"ufs0", "ufs1"};
        CHECK(load_error(with_expect(e)).find("unknown controller \"ufs1\"") != std::string::npos);
        e["ctrls"] = json::array();
        CHECK_FALSE(load_error(with_expect(e)).empty());
        // comparators are numbers, and a range must not be empty
        e = good;
        e["max"] = "3";
        CHECK(load_error(with_expect(e)).find("\"max\" must be a number") != std::string::npos);
        e["min"] = 4;
        e["max"] = 3;
        CHECK(load_error(with_expect(e)).find("greater than") != std::string::npos);
    }
    json e = counter;
    e.erase("counter");
    CHECK(load_error(with_expect(e)).find("\"counter\" is missing") != std::string::npos);
    e = events;
    e.erase("match");
    CHECK(load_error(with_expect(e)).find("\"match\" is missing") != std::string::npos);
}

TEST_CASE("the other expectation kinds reject what they would ignore") {
    const std::vector<std::pair<json, const char*>> bad = {
        {{{"kind", "disk_crypto"}, {"disk", "ua"}}, "exactly one of"},
        {{{"kind", "disk_crypto"}, {"disk", "ua"}, {"none", true}, {"equals", json::object()}},
         "exactly one of"},
        {{{"kind", "disk_crypto"}, {"disk", "ua"}, {"none", false}}, "\"none\" can only be true"},
        {{{"kind", "key_on_all"}, {"ctrl_ids", {"ufs0"}}}, "unknown key \"ctrl_ids\""},
        {{{"kind", "keys_evicted"}, {"ctrls", {"ufsO"}}}, "unknown controller \"ufsO\""},
        {{{"kind", "reply"}, {"step", 1}, {"pointer", "/x"}, {"equals", 1}, {"contains", "x"}},
         "exclude each other"},
        {{{"kind", "kmsg"}, {"contain", "x"}}, "unknown key \"contain\""},
        {{{"kind", "kmsg"}, {"contains", "x"}, {"at", "nope"}}, "unknown key \"at\""},
        {{{"kind", "kmsg"}, {"contains", "x"}, {"upto", "nope"}}, "\"upto\": unknown step label"},
    };
    for (const auto& [e, needle] : bad) {
        INFO(e.dump());
        CHECK(load_error(with_expect(e)).find(needle) != std::string::npos);
    }
}

TEST_CASE("a load error names the file and the field") {
    icemu::runner::json j = minimal();
    j["expect"][0]["ctrls"] = {"ufs0"};
    const auto path = std::filesystem::temp_directory_path() / "icemu-strict-scenario.json";
    {
        std::ofstream f(path);
        f << j.dump(2);
    }
    std::string err;
    try {
        (void)load_scenario(path.string());
    } catch (const ScenarioError& e) {
        err = e.what();
    }
    std::filesystem::remove(path);
    CHECK(err.find(path.string()) == 0);
    CHECK(err.find("expect[0] \"kmsg\": unknown key \"ctrls\"") != std::string::npos);
}

TEST_CASE("key manager options: raw_keys and wrapping_key need wrapped_keys; a wrapping key is "
          "32 bytes; an eMMC takes them too") {
    auto with = [](json ctl) {
        ctl["id"] = "ufs0";
        if (!ctl.contains("type"))
            ctl["lus"] = json::array({{{"name", "ua"}, {"size", "16M"}}});
        return json{{"name", "w"},
                    {"controllers", json::array({ctl})},
                    {"steps", json::array({{{"op", "sysinfo"}}})}};
    };
    const std::string k64(64, 'a');
    Scenario s =
        parse_scenario(with({{"wrapped_keys", true}, {"raw_keys", false}, {"wrapping_key", k64}}));
    CHECK(s.controllers[0].wrapped_keys);
    CHECK_FALSE(s.controllers[0].raw_keys);
    CHECK(s.controllers[0].wrapping_key == k64);
    CHECK(parse_scenario(with(json::object())).controllers[0].raw_keys);
    CHECK_THROWS_AS(parse_scenario(with({{"raw_keys", false}})), ScenarioError);
    CHECK_THROWS_AS(parse_scenario(with({{"wrapping_key", k64}})), ScenarioError);
    CHECK_THROWS_AS(parse_scenario(with({{"wrapped_keys", true}, {"wrapping_key", "abcd"}})),
                    ScenarioError);
    const Scenario e = parse_scenario(with({{"wrapped_keys", true},
                                            {"raw_keys", false},
                                            {"wrapping_key", k64},
                                            {"type", "emmc"},
                                            {"name", "ea"},
                                            {"size", "64M"}}));
    CHECK(e.controllers[0].is_emmc());
    CHECK(e.controllers[0].wrapped_keys);
    CHECK_FALSE(e.controllers[0].raw_keys);
    CHECK(e.controllers[0].wrapping_key == k64);
    CHECK_THROWS_AS(parse_scenario(with(
                        {{"raw_keys", false}, {"type", "emmc"}, {"name", "ea"}, {"size", "64M"}})),
                    ScenarioError);
}

TEST_CASE("reboot is a host step without arguments") {
    json j = minimal();
    j["steps"].push_back({{"op", "reboot"}, {"label", "rb"}, {"timeout_s", 90}});
    Scenario s = parse_scenario(j);
    CHECK(s.steps.back().host_only());
    CHECK(s.steps.back().timeout_s == 90);
    j["steps"].back()["ctrl"] = "ufs0";
    CHECK_THROWS_AS(parse_scenario(j), ScenarioError);
}

TEST_CASE("the hardware-wrapped-key scenarios run on 7.x and SKIP on 6.12 and 6.1") {
    // They need the blk-crypto key types (6.15+) and icemu's patches/7.x/0003 (UFS) and 0004
    // (eMMC) drivers.
    for (const char* name :
         {"16-ufs-wrapped-keys-fscrypt", "17-wrapped-key-reboot", "18-dm-wrapped-keys",
          "19-ufs-wrapped-only", "20-emmc-wrapped-keys-fscrypt"}) {
        INFO(name);
        const Scenario s = load_scenario(std::string(ICEMU_SCENARIO_DIR) + "/" + name + ".json");
        CHECK(kernel_matches(s.kernel, "7.3.4"));
        CHECK_FALSE(kernel_matches(s.kernel, "6.12.117"));
        CHECK_FALSE(kernel_matches(s.kernel, "6.1.192"));
        CHECK(std::any_of(s.controllers.begin(), s.controllers.end(),
                          [](const Controller& c) { return c.wrapped_keys; }));
    }
}

TEST_CASE("the breadth scenarios run on 7.x, 6.12 and 6.1") {
    // 30, 32, 33 use what 6.1 already has (F2FS inlinecrypt, the fallback's ESSIV and Adiantum
    // modes, HCTR2 filenames since 6.0, dm-linear passthrough).
    for (const char* name : {"30-f2fs-ufs-emmc", "32-fallback-modes", "33-dm-linear-stacked"}) {
        INFO(name);
        const Scenario s = load_scenario(std::string(ICEMU_SCENARIO_DIR) + "/" + name + ".json");
        CHECK(kernel_matches(s.kernel, "7.3.4"));
        CHECK(kernel_matches(s.kernel, "6.12.117"));
        CHECK(kernel_matches(s.kernel, "6.1.192"));
    }
}

TEST_CASE("the sub-block data-unit scenarios run on 7.x and 6.12 and SKIP on 6.1") {
    // 31 (IV_INO_LBLK_64 with 1024-byte units on F2FS) and 34 set log2_data_unit_size, which
    // fscrypt accepts from 6.7 on (rule fscrypt-data-unit-size-policy).
    for (const char* name : {"31-f2fs-multi-device", "34-sub-block-data-units"}) {
        INFO(name);
        const Scenario s = load_scenario(std::string(ICEMU_SCENARIO_DIR) + "/" + name + ".json");
        CHECK(kernel_matches(s.kernel, "7.3.4"));
        CHECK(kernel_matches(s.kernel, "6.12.117"));
        CHECK_FALSE(kernel_matches(s.kernel, "6.1.192"));
    }
}
