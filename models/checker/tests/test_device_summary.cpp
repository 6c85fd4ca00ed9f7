// icemu-check --device-only: the summary ./icemu shell prints, judged on hand-written logs
// in the schema of docs/event-log.md.
#include <catch2/catch_test_macros.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "icemu/checker/device_summary.hpp"

namespace {

const char* kRealize =
    R"({"v":1,"seq":0,"t_ns":0,"ctrl":"ufs0","ev":"realize","slots":8,"cfgptr":32,"caps":[{"idx":0,"algid":0,"sdusb":15,"ks":3}],"wipe_on_disable":true,"log_keys":false,"frontend":"ufs"})";
const char* kEnable =
    R"({"v":1,"seq":1,"t_ns":1,"ctrl":"ufs0","ev":"enable","on":true,"cge":true})";
const char* kProgram =
    R"({"v":1,"seq":2,"t_ns":2,"ctrl":"ufs0","ev":"program","slot":3,"capidx":0,"dusize":4096,"key_fp":"0123456789abcdef","ok":true})";
const char* kWrite =
    R"({"v":1,"seq":3,"t_ns":3,"ctrl":"ufs0","ev":"io","slot":3,"ce":true,"lun":0,"op":"write","opcode":42,"lba":100,"blocks":2,"bytes":8192,"block_size":4096,"dun":7,"dusize":4096,"key_fp":"0123456789abcdef","ocs":0,"status":0,"queue":"legacy"})";
const char* kEvict =
    R"({"v":1,"seq":4,"t_ns":4,"ctrl":"ufs0","ev":"evict","slot":3,"was_armed":true})";

struct Log {
    std::string path;
    explicit Log(std::initializer_list<const char*> lines) {
        char tmpl[] = "/tmp/icemu-devsum-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream out(path);
        for (const char* l : lines)
            out << l << "\n";
    }
    ~Log() { std::filesystem::remove(path); }
};

std::string status(const nlohmann::json& r, const std::string& name) {
    for (const auto& v : r["verdicts"])
        if (v["name"] == name)
            return v["status"];
    return "absent";
}

} // namespace

TEST_CASE("device summary: an evicted key passes keys-evicted", "[device-summary]") {
    Log log{kRealize, kEnable, kProgram, kWrite, kEvict};
    std::ostringstream out;
    auto r = icemu::checker::device_summary({{"ufs0", log.path}}, {true}, out);
    CHECK(status(r, "replay") == "pass");
    CHECK(status(r, "keys-evicted") == "pass");
    CHECK(r["controllers"]["ufs0"]["programs"] == 1);
    CHECK(r["controllers"]["ufs0"]["ce_writes"] == 1);
    CHECK(r["controllers"]["ufs0"]["evicts"] == 1);
    CHECK(out.str().find("no key programmed at the end") != std::string::npos);
}

TEST_CASE("device summary: a key left in a slot fails once nothing is mounted",
          "[device-summary]") {
    Log log{kRealize, kEnable, kProgram, kWrite};
    std::ostringstream out;
    auto failing = icemu::checker::device_summary({{"ufs0", log.path}}, {true}, out);
    CHECK(status(failing, "keys-evicted") == "fail");
    CHECK(out.str().find("slot 3 still holds key 0123456789abcdef") != std::string::npos);
    // While a filesystem is still mounted the rule does not apply.
    auto mounted = icemu::checker::device_summary({{"ufs0", log.path}}, {false}, out);
    CHECK(status(mounted, "keys-evicted") == "not-applicable");
    CHECK(mounted["controllers"]["ufs0"]["keys_left"].size() == 1);
}

TEST_CASE("device summary: an event the register model contradicts fails replay",
          "[device-summary]") {
    // The evict claims the slot was not armed, but the program armed it.
    const char* bad =
        R"({"v":1,"seq":4,"t_ns":4,"ctrl":"ufs0","ev":"evict","slot":3,"was_armed":false})";
    Log log{kRealize, kEnable, kProgram, kWrite, bad};
    std::ostringstream out;
    auto r = icemu::checker::device_summary({{"ufs0", log.path}}, {true}, out);
    CHECK(status(r, "replay") == "fail");
}

TEST_CASE("device summary: a malformed log is an input error", "[device-summary]") {
    Log log{kRealize, "{not json"};
    std::ostringstream out;
    CHECK_THROWS(icemu::checker::device_summary({{"ufs0", log.path}}, {false}, out));
}
