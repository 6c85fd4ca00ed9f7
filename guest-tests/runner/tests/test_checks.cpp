#include <catch2/catch_test_macros.hpp>

#include "cmdline.hpp"
#include "record.hpp"

using namespace icemu::runner;

static Scenario scen() {
    return parse_scenario(json::parse(R"J({
	  "name": "k",
	  "controllers": [{"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}]},
	                  {"id": "ufs1", "lus": [{"name": "ub", "size": "16M"}]}],
	  "steps": [{"op": "write_file", "label": "w"}, {"op": "remove_key", "label": "rm"},
	            {"op": "disks", "label": "d"},
	            {"op": "dm_load", "label": "bad", "expect": {"errno": "EINVAL", "kmsg": "more restrictive"}}],
	  "expect": [
	    {"kind": "keys_evicted", "ctrls": ["ufs0", "ufs1"], "from": "boot", "to": "w", "at": "rm"},
	    {"kind": "key_on_all", "ctrls": ["ufs0", "ufs1"], "to": "w"},
	    {"kind": "counter", "ctrl": "ufs0", "counter": "ce_writes", "min": 1, "to": "w"},
	    {"kind": "events", "ctrl": "ufs0", "match": {"ev": "io", "ce": true}, "min": 1, "to": "w"},
	    {"kind": "disk_crypto", "disk": "lin", "at": "d", "intersection_of": ["ua", "ub"]},
	    {"kind": "kmsg", "contains": "using blk-crypto (native)"}
	  ]})J"));
}

// Event log lines as the device writes them (docs/event-log.md).
constexpr const char* kFp = "00000000000000aa";
constexpr const char* kRealize =
    R"({"v":1,"seq":0,"t_ns":0,"ctrl":"ufs0","ev":"realize","slots":8,"cfgptr":32,"caps":[],)"
    R"("wipe_on_disable":true,"log_keys":false,"frontend":"ufs"})";
constexpr const char* kProgram =
    R"({"v":1,"seq":1,"t_ns":5,"ctrl":"ufs0","ev":"program","slot":0,"capidx":0,"dusize":4096,)"
    R"("key_fp":"00000000000000aa","ok":true})";
constexpr const char* kIo =
    R"({"v":1,"seq":2,"t_ns":9,"ctrl":"ufs0","ev":"io","slot":0,"ce":true,"lun":0,"op":"write",)"
    R"("opcode":42,"lba":0,"blocks":1,"bytes":4096,"block_size":4096,"dun":0,"dusize":4096,)"
    R"("key_fp":"00000000000000aa","ocs":0,"status":0,"queue":"sdb"})";

static StepRecord step(std::size_t i, const char* op, const char* label, json reply) {
    StepRecord r;
    r.index = i;
    r.op = op;
    r.label = label;
    r.request = json::object();
    r.reply = std::move(reply);
    r.seconds = 0.1;
    return r;
}

static json state(std::uint64_t ce_writes, const std::string& fp) {
    json slots = json::array();
    slots.push_back({{"slot", 0}, {"armed", !fp.empty()}, {"key_fp", fp}});
    return {{"cge", true}, {"slots", slots}, {"counters", {{"ce_writes", ce_writes}}}};
}

static RunRecord record(bool evicted) {
    RunRecord r;
    r.hello = {{"hello", "icemu-guest"}, {"kmsg", {"[ 1.0] boot"}}};
    auto crypto = [](const char* modes, unsigned dun) {
        return json{{"max_dun_bits", dun},
                    {"num_keyslots", 8},
                    {"raw_keys", "supported"},
                    {"modes", {{"AES-256-XTS", modes}}}};
    };
    json disks = json::array();
    disks.push_back(
        {{"name", "sda"}, {"pci", ufs_pci_addr(0)}, {"lun", 0}, {"crypto", crypto("0x1e00", 64)}});
    disks.push_back(
        {{"name", "sdb"}, {"pci", ufs_pci_addr(1)}, {"lun", 0}, {"crypto", crypto("0x1000", 64)}});
    r.boot_disks = {{"ok", true}, {"disks", disks}};
    r.disk_map = map_disks(scen(), r.boot_disks);
    json dm_disks = disks;
    dm_disks.push_back({{"name", "dm-0"},
                        {"dm_name", "lin"},
                        {"crypto",
                         {{"max_dun_bits", 64},
                          {"num_keyslots", 0},
                          {"raw_keys", "supported"},
                          {"modes", {{"AES-256-XTS", "0x1000"}}}}}});
    r.steps = {
        step(1, "write_file", "w",
             {{"ok", true}, {"kmsg", {"[ 2.0] fscrypt: AES-256-XTS using blk-crypto (native)"}}}),
        step(2, "remove_key", "rm", {{"ok", true}, {"kmsg", json::array()}}),
        step(3, "disks", "d", {{"ok", true}, {"disks", dm_disks}, {"kmsg", json::array()}}),
        step(4, "dm_load", "bad",
             {{"ok", false},
              {"errno", 22},
              {"errno_name", "EINVAL"},
              {"kmsg",
               {"device-mapper: table: Inline encryption capabilities of new DM table were more "
                "restrictive"}}})};
    r.snapshots = {{{"ufs0", state(0, "")}, {"ufs1", state(0, "")}},
                   {{"ufs0", state(3, kFp)}, {"ufs1", state(2, kFp)}},
                   {{"ufs0", state(3, evicted ? "" : kFp)}, {"ufs1", state(2, "")}},
                   {{"ufs0", state(3, "")}, {"ufs1", state(2, "")}},
                   {{"ufs0", state(3, "")}, {"ufs1", state(2, "")}}};
    r.events["ufs0"] = parse_event_log(std::string(kRealize) + "\n" + kProgram + "\n" + kIo + "\n");
    // boot ends after the realize line; the program and io lines are logged by step 1
    const std::uint64_t boot = std::string(kRealize).size() + 1, end = 1000;
    r.event_marks = {
        {{"ufs0", boot}}, {{"ufs0", end}}, {{"ufs0", end}}, {{"ufs0", end}}, {{"ufs0", end}}};
    return r;
}

TEST_CASE("disks map to scenario names by PCI slot and LUN") {
    auto r = record(true);
    CHECK(r.disk_map["ua"]["name"] == "sda");
    CHECK(r.disk_map["ub"]["name"] == "sdb");
    Lookup l = base_lookup(scen(), r);
    CHECK(l["ub.sys"] == "sdb");
}

TEST_CASE("every expectation kind passes on a good run") {
    Scenario s = scen();
    RunRecord r = record(true);
    for (const auto& x : s.expectations) {
        TestPoint p = check_expectation(s, x, r);
        INFO(x.kind << ": " << p.diag);
        CHECK(p.passed);
    }
    for (const auto& st : r.steps) {
        TestPoint p = check_step(s, st);
        INFO(p.name << ": " << p.diag);
        CHECK(p.passed);
    }
}

TEST_CASE("a key left in a slot after removal names the controller and slot") {
    Scenario s = scen();
    TestPoint p = check_expectation(s, s.expectations[0], record(false));
    CHECK_FALSE(p.passed);
    CHECK(p.diag.find("ufs0 slot 0 still holds key 00000000000000aa") != std::string::npos);
}

TEST_CASE("a step expected to fail with EINVAL fails the check when it succeeds") {
    Scenario s = scen();
    RunRecord r = record(true);
    r.steps[3].reply = {{"ok", true}, {"kmsg", json::array()}};
    TestPoint p = check_step(s, r.steps[3]);
    CHECK_FALSE(p.passed);
    CHECK(p.diag.find("succeeded, expected failure") != std::string::npos);
}

TEST_CASE("capability intersection takes the minimum DUN size and ANDs the masks") {
    json a = {
        {"max_dun_bits", 64}, {"raw_keys", "supported"}, {"modes", {{"AES-256-XTS", "0x1e00"}}}};
    json b = {
        {"max_dun_bits", 32}, {"raw_keys", "supported"}, {"modes", {{"AES-256-XTS", "0x1200"}}}};
    json i = intersect_crypto({a, b});
    CHECK(i["max_dun_bits"] == 32);
    CHECK(i["modes"]["AES-256-XTS"] == "0x1200");
    CHECK(intersect_crypto({a, nullptr}).is_null());
    json c = {{"max_dun_bits", 64}, {"modes", {{"AES-256-XTS", "0x200"}}}};
    CHECK(intersect_crypto({json{{"max_dun_bits", 64}, {"modes", {{"AES-256-XTS", "0x1000"}}}}, c})
              .is_null());
}

TEST_CASE("the intersection keeps a key type only if every child has it") {
    json both = {{"max_dun_bits", 64},
                 {"raw_keys", "supported"},
                 {"hw_wrapped_keys", "supported"},
                 {"modes", {{"AES-256-XTS", "0x1e00"}}}};
    json raw = {
        {"max_dun_bits", 64}, {"raw_keys", "supported"}, {"modes", {{"AES-256-XTS", "0x1e00"}}}};
    json wrapped = {{"max_dun_bits", 64},
                    {"hw_wrapped_keys", "supported"},
                    {"modes", {{"AES-256-XTS", "0x1e00"}}}};
    CHECK(intersect_crypto({both, both}).contains("hw_wrapped_keys"));
    CHECK(intersect_crypto({both, both}).contains("raw_keys"));
    json i = intersect_crypto({both, raw});
    CHECK(i.contains("raw_keys"));
    CHECK_FALSE(i.contains("hw_wrapped_keys"));
    json w = intersect_crypto({both, wrapped});
    CHECK(w.contains("hw_wrapped_keys"));
    CHECK_FALSE(w.contains("raw_keys"));
}

TEST_CASE("disk_crypto: lacks fails on a present file; intersection_of fails on an extra key "
          "type") {
    Scenario s = parse_scenario(json::parse(R"J({
	  "name": "k",
	  "controllers": [{"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}]},
	                  {"id": "ufs1", "lus": [{"name": "ub", "size": "16M"}]}],
	  "steps": [{"op": "disks", "label": "d"}],
	  "expect": [
	    {"kind": "disk_crypto", "disk": "ua", "at": "d", "equals": {"max_dun_bits": 64},
	     "lacks": ["raw_keys"]},
	    {"kind": "disk_crypto", "disk": "lin", "at": "d", "intersection_of": ["ua", "ub"],
	     "lacks": ["hw_wrapped_keys"]}
	  ]})J"));
    RunRecord r;
    r.hello = {{"hello", "icemu-guest"}, {"kmsg", json::array()}};
    r.steps = {step(1, "disks", "d", json::object())};
    json modes = {{"AES-256-XTS", "0x1e00"}};
    auto disks = [&](json ua, json lin) {
        return json{
            {"ok", true},
            {"disks",
             {{{"name", "sda"}, {"pci", "0000:00:04.0"}, {"lun", 0}, {"crypto", ua}},
              {{"name", "sdb"},
               {"pci", "0000:00:05.0"},
               {"lun", 0},
               {"crypto", {{"max_dun_bits", 64}, {"raw_keys", "supported"}, {"modes", modes}}}},
              {{"name", "dm-0"}, {"dm_name", "lin"}, {"crypto", lin}}}}};
    };
    json wrapped_only = {{"max_dun_bits", 64}, {"hw_wrapped_keys", "supported"}, {"modes", modes}};
    json both = {{"max_dun_bits", 64},
                 {"raw_keys", "supported"},
                 {"hw_wrapped_keys", "supported"},
                 {"modes", modes}};
    json raw = {{"max_dun_bits", 64}, {"raw_keys", "supported"}, {"modes", modes}};
    r.steps.at(0).reply = disks(wrapped_only, raw);
    r.disk_map = map_disks(s, r.steps.at(0).reply);
    CHECK(check_expectation(s, s.expectations[0], r).passed);
    r.steps.at(0).reply = disks(both, raw);
    CHECK_FALSE(check_expectation(s, s.expectations[0], r).passed);
    CHECK(check_expectation(s, s.expectations[1], r).passed);
    r.steps.at(0).reply = disks(both, both); // the dm device claims a type ub does not have
    CHECK_FALSE(check_expectation(s, s.expectations[1], r).passed);
}

TEST_CASE("after a reboot that swaps sdX names, ${disk} and disk_crypto follow the LU") {
    Scenario s = parse_scenario(json::parse(R"J({
	  "name": "k",
	  "controllers": [{"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}, {"name": "ub", "lun": 1, "size": "16M"}]}],
	  "steps": [{"op": "reboot", "label": "rb"}, {"op": "disks", "label": "d"}],
	  "expect": [{"kind": "disk_crypto", "disk": "ua", "at": "rb", "equals": {"max_dun_bits": 64}}]
	  })J"));
    auto disk = [](const char* name, int lun, unsigned dun) {
        return json{{"name", name},
                    {"dev_path", std::string("/dev/") + name},
                    {"pci", ufs_pci_addr(0)},
                    {"lun", lun},
                    {"crypto", {{"max_dun_bits", dun}}}};
    };
    RunRecord r;
    r.hello = {{"hello", "icemu-guest"}, {"kmsg", json::array()}};
    r.boot_disks = {{"ok", true}, {"disks", {disk("sda", 0, 64), disk("sdb", 1, 32)}}};
    r.disk_map = map_disks(s, r.boot_disks);
    json after = {{"ok", true}, {"disks", {disk("sda", 1, 32), disk("sdb", 0, 64)}}};
    json map = json(map_disks(s, after));
    CHECK(map["ua"]["name"] == "sdb");
    Lookup l = base_lookup(s, r);
    CHECK(l["ua"] == "/dev/sda");
    bind_disks(l, map);
    CHECK(l["ua"] == "/dev/sdb");
    CHECK(l["ub.sys"] == "sda");
    r.steps = {
        step(1, "reboot", "rb", {{"ok", true}, {"disks", after["disks"]}, {"disk_map", map}})};
    CHECK(check_expectation(s, s.expectations[0], r).passed);
    // the same check against the boot's names reads ub's 32-bit DUN and fails
    r.steps[0].reply.erase("disk_map");
    CHECK_FALSE(check_expectation(s, s.expectations[0], r).passed);
}

TEST_CASE("without an engine, device checks fail and say why") {
    Scenario s = scen();
    RunRecord r = record(true);
    r.engine = false;
    r.events.clear();
    for (auto& snap : r.snapshots)
        for (auto& [k, v] : snap)
            v = nullptr;
    TestPoint p = check_expectation(s, s.expectations[3], r);
    CHECK_FALSE(p.passed);
    CHECK(p.diag.find("no crypto engine") != std::string::npos);
}

TEST_CASE("the event log parser keeps byte offsets and ignores a torn last line") {
    const std::string a = kRealize, b = "not json", c = kIo;
    auto ev = parse_event_log(a + "\n" + b + "\n" + c + "\n{\"ev\":\"pro");
    REQUIRE(ev.size() == 3);
    CHECK(ev[0].offset == 0);
    CHECK(ev[0].e["ev"] == "realize");
    CHECK(ev[1].e["ev"] == "invalid");
    CHECK(ev[1].error.find("line 2") != std::string::npos);
    CHECK(ev[2].offset == a.size() + b.size() + 2);
    CHECK(ev[2].e["ev"] == "io");
    CHECK(ev[2].e["key_fp"] == kFp);
}

TEST_CASE("the runner reads event logs with the schema's parser: a line outside it is invalid") {
    // A misspelt io error and a missing field are rejected, as icemu-check rejects them.
    std::string bad = kIo;
    bad.insert(bad.size() - 1, R"(,"error":"opcod")");
    auto ev = parse_event_log(bad + "\n");
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].e["ev"] == "invalid");
    CHECK(ev[0].error.find("unknown io error") != std::string::npos);
    // The CE WRITE SAME refusal the device logs (error "opcode") is a valid line.
    std::string refusal = kIo;
    refusal.insert(refusal.size() - 1, R"(,"error":"opcode")");
    ev = parse_event_log(refusal + "\n");
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].error == "");
    CHECK(ev[0].e["error"] == "opcode");
}

TEST_CASE("an events expectation fails on an invalid log line and names it") {
    Scenario s = scen();
    RunRecord r = record(true);
    r.events["ufs0"] =
        parse_event_log(std::string(kRealize) + "\n" + kProgram + "\n" + kIo + "\n{\"v\":1}\n");
    TestPoint p = check_expectation(s, s.expectations[3], r);
    CHECK_FALSE(p.passed);
    CHECK(p.diag.find("invalid event log, line 4") != std::string::npos);
}

TEST_CASE("an events match must name the schema's fields and values") {
    auto with_match = [](const char* match) {
        return json::parse(std::string(R"J({"name": "m", "controllers": [{"id": "ufs0",
            "lus": [{"name": "ua", "size": "16M"}]}], "steps": [{"op": "sync"}],
            "expect": [{"kind": "events", "ctrl": "ufs0", "min": 1, "match": )J") +
                           match + "}]}");
    };
    CHECK_NOTHROW(parse_scenario(with_match(R"({"ev": "fault", "kind": "fatal"})")));
    CHECK_NOTHROW(parse_scenario(with_match(R"({"ev": "io", "error": "opcode"})")));
    CHECK_THROWS_AS(parse_scenario(with_match(R"({"ev": "fault", "kinds": "fatal"})")),
                    ScenarioError);
    CHECK_THROWS_AS(parse_scenario(with_match(R"({"ev": "fault", "kind": "fatl"})")),
                    ScenarioError);
    CHECK_THROWS_AS(parse_scenario(with_match(R"({"ev": "evicted"})")), ScenarioError);
    CHECK_THROWS_AS(parse_scenario(with_match(R"({"ev": "wipe", "slot": 1})")), ScenarioError);
}

TEST_CASE("a step or expectation for another kernel is a SKIP, not a pass or a failure") {
    Scenario s = scen();
    RunRecord r = record(false); // the key stays in ufs0: the keys_evicted check would fail
    r.hello["release"] = "6.12.117";
    Expectation x = s.expectations[0];
    x.kernel = "dm-passthrough-striped";
    TestPoint p = check_expectation(s, x, r);
    CHECK(p.ok());
    CHECK(p.skip == "needs kernel dm-passthrough-striped, the guest runs 6.12.117");
    x.kernel = "!dm-passthrough-striped";
    TestPoint q = check_expectation(s, x, r);
    CHECK(q.skip.empty());
    CHECK_FALSE(q.ok()); // applies on 6.12 and fails
    StepRecord st = r.steps[3];
    st.reply = nullptr;
    st.skipped = "needs kernel >=7, the guest runs 6.12.117";
    TestPoint sp = check_step(s, st);
    CHECK(sp.ok());
    CHECK(sp.skip == st.skipped);
    CHECK(r.to_json().dump().find("skipped") == std::string::npos);
    r.steps[3] = st;
    CHECK(r.to_json()["steps"][3]["skipped"] == st.skipped);
}

TEST_CASE("a kernel-conditional xfail is expected only where its bug rule holds") {
    Scenario s = scen();
    RunRecord r = record(false); // the key stays in ufs0: the keys_evicted check fails
    r.hello["release"] = "7.3.4";
    Expectation x = s.expectations[0];
    x.xfail = "bug (a)";
    x.xfail_when = "bug-dm-evict-live-table-only";
    TestPoint p = check_expectation(s, x, r);
    CHECK(p.is_xfail());
    CHECK(p.ok());
    r.with_fixes = true; // the fix is applied, yet the device still holds the key: a failure
    TestPoint q = check_expectation(s, x, r);
    CHECK(q.xfail.empty());
    CHECK_FALSE(q.ok());
    CHECK(q.skip.empty());
    RunRecord good = record(true); // evicted: with fixes this passes
    good.hello["release"] = "7.3.4";
    good.with_fixes = true;
    CHECK(check_expectation(s, x, good).ok());
    good.with_fixes = false; // without fixes, a pass is an XPASS
    CHECK_FALSE(check_expectation(s, x, good).ok());
    good.hello["release"] = "6.6.60"; // outside the rule table: an error, not a default
    CHECK_FALSE(check_expectation(s, x, good).ok());
}

TEST_CASE(
    "an emmc controller's disk is the mmcblk user area on its PCI slot, not a boot partition") {
    Scenario s = parse_scenario(json::parse(R"({
	  "name": "e",
	  "controllers": [{"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}]},
	                  {"id": "emmc0", "type": "emmc", "name": "ea", "size": "64M"}],
	  "steps": [{"op": "sysinfo"}]})"));
    json disks = json::array();
    disks.push_back({{"name", "mmcblk0boot0"}, {"pci", ufs_pci_addr(1)}, {"lun", nullptr}});
    disks.push_back({{"name", "sda"}, {"pci", ufs_pci_addr(0)}, {"lun", 0}});
    disks.push_back({{"name", "mmcblk0"}, {"pci", ufs_pci_addr(1)}, {"lun", nullptr}});
    auto m = map_disks(s, {{"disks", disks}});
    CHECK(m["ua"]["name"] == "sda");
    CHECK(m["ea"]["name"] == "mmcblk0");
}

TEST_CASE("preflight: a crypto=on disk without queue/crypto stops the run with the cause") {
    Scenario s = scen();
    std::map<std::string, json> disks;
    for (const auto& c : s.controllers)
        for (const auto& lu : c.lus)
            disks[lu.name] = {{"name", "sd" + lu.name}, {"crypto", {{"num_keyslots", 8}}}};
    CHECK(crypto_preflight(s, disks, true).empty());
    const std::string first = s.controllers.at(0).lus.at(0).name;
    disks[first]["crypto"] = nullptr;
    std::string why = crypto_preflight(s, disks, true);
    CHECK(why.find(s.controllers.at(0).id + " has crypto=on but its disk sd" + first) == 0);
    CHECK(why.find("CONFIG_SCSI_UFS_CRYPTO") != std::string::npos);
    CHECK(why.find("intel-mtl") != std::string::npos);
    // With the engine forced off (--crypto off) nothing is expected.
    CHECK(crypto_preflight(s, disks, false).empty());
}

TEST_CASE("a counter the device does not report fails instead of reading as 0") {
    Scenario s = parse_scenario(json::parse(R"J({
	  "name": "k",
	  "controllers": [{"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}]},
	                  {"id": "ufs1", "lus": [{"name": "ub", "size": "16M"}]}],
	  "steps": [{"op": "write_file", "label": "w"}, {"op": "remove_key", "label": "rm"},
	            {"op": "disks", "label": "d"}, {"op": "dm_load", "label": "bad"}],
	  "expect": [{"kind": "counter", "ctrl": "ufs0", "counter": "ce_writse", "eq": 0, "to": "w"},
	             {"kind": "counter", "ctrl": "ufs0", "counter": "ce_writes", "eq": 3, "to": "w"}]})J"));
    RunRecord r = record(true);
    TestPoint p = check_expectation(s, s.expectations[0], r);
    CHECK_FALSE(p.passed);
    CHECK(p.diag.find("ufs0: crypto-state has no counter \"ce_writse\"") != std::string::npos);
    CHECK(check_expectation(s, s.expectations[1], r).passed);
}
