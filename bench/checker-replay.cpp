// checker-replay: generates a realistic event log of >= 1 M events in memory (one UFS
// controller; CE writes and reads of an IV_INO_LBLK_64 file, CE=0 metadata writes, periodic
// evict + reprogram of the key) plus the run.json facts that let icemu-check attribute every
// CE io to the fscrypt model, then measures:
//   parse  : parse_log_text (models::events::parse_log + line offsets),
//   replay : icemu::checker::check() (LogReplay + TrafficChecker + key/DUN/plaintext checks),
// and prints events/s of process CPU time for each and for both together.
#include "icemu/checker/checker.hpp"
#include "icemu/models/fscrypt.hpp"
#include "icemu/models/xts.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace ev = icemu::models::events;
namespace fc = icemu::models::fscrypt;
using icemu::checker::json;

namespace {

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

} // namespace

int main(int argc, char** argv) {
    const std::size_t target = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 1'200'000;
    const std::string master(128, 'a');
    const std::string uuid = "3f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    const auto mk = icemu::models::from_hex(master);
    const auto uuid_b = icemu::models::from_hex("3f1e2d3c4b5a49688776a5b4c3d2e1f0");
    const std::string fp = icemu::models::key_fingerprint(fc::iv_ino_lblk_64_key(mk, uuid_b));
    const std::string id = icemu::models::to_hex(fc::key_identifier(mk));
    constexpr std::uint64_t ino = 12;

    // ---- generate ----
    std::string text;
    text.reserve(target * 270);
    std::uint64_t seq = 0, t = 0;
    auto emit = [&](ev::Body b) {
        ev::Event e;
        e.seq = seq++;
        e.t_ns = t += 1000;
        e.ctrl = "ufs0";
        e.body = std::move(b);
        text += ev::to_json_line(e);
        text += '\n';
    };
    ev::Realize r;
    r.slots = 8;
    r.cfgptr = 0x20;
    r.caps = {ev::CapEntry{0, 0, 0x0f, 3}};
    r.wipe_on_disable = true;
    r.frontend = "ufs";
    emit(r);
    emit(ev::Enable{true, true});
    bool armed = false;
    std::uint64_t lba = 0, ios = 0;
    while (seq < target) {
        if (ios % 4096 == 0) { // evict + reprogram (key removal / re-add)
            if (armed) {
                emit(ev::Disarm{0});
                emit(ev::Evict{0, false});
            }
            ev::Program p;
            p.slot = 0;
            p.dusize = 4096;
            p.key_fp = fp;
            p.ok = true;
            emit(p);
            armed = true;
        }
        ev::Io io;
        const bool meta = ios % 16 == 15;
        io.ce = !meta;
        io.slot = meta ? -1 : 0;
        io.op = meta || ios % 3 != 0 ? ev::IoOp::write : ev::IoOp::read;
        io.opcode = io.op == ev::IoOp::write ? 0x2a : 0x28;
        io.block_size = 4096;
        io.blocks = 8;
        io.bytes = 8 * 4096;
        io.queue = "sdb";
        if (meta) {
            io.lba = (1u << 20) + (ios % 1024); // outside the file: journal / inode tables
        } else {
            io.lba = lba;
            io.dun = ino << 32 | lba;
            io.dusize = 4096;
            io.key_fp = fp;
            lba = (lba + 8) % (1u << 18);
        }
        emit(io);
        ++ios;
    }
    const std::size_t n_events = seq;

    // The run: one step wrote the file whose single extent covers LBAs 0 .. 2^18 of ufs0's LU.
    json run = {{"hello", {{"release", "7.3.4"}}},
                {"disk_map", {{"ua", {{"name", "sdb"}, {"dev_path", "/dev/sdb"}}}}},
                {"steps", json::array()},
                {"snapshots", json::array()}};
    auto step = [&](const std::string& op, json rq, json rp) {
        rq["op"] = op;
        rp["ok"] = true;
        run["steps"].push_back(
            {{"index", run["steps"].size() + 1}, {"op", op}, {"request", rq}, {"reply", rp}});
    };
    step("mkfs", {{"dev", "/dev/sdb"}, {"uuid", uuid}}, json::object());
    step("mount", {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}},
         json::object());
    step("add_key", {{"mnt", "/mnt"}, {"key", master}}, {{"identifier", id}});
    step("set_policy", {{"dir", "/mnt/d"}, {"identifier", id}},
         {{"policy", {{"flags", 0x0b}, {"log2_data_unit_size", 0}}}});
    step("write_file", {{"path", "/mnt/d/f"}, {"size", 1ull << 30}, {"seed", 1}},
         {{"ino", ino}, {"size", 1ull << 30}});
    step("file_info", {{"path", "/mnt/d/f"}},
         {{"ino", ino},
          {"size", 1ull << 30},
          {"extents", {{{"logical", 0}, {"physical", 0}, {"length", 1ull << 30}, {"flags", 1}}}}});
    for (std::size_t i = 0; i <= run["steps"].size(); ++i) { // every event logged in write_file
        run["snapshots"].push_back(
            {{"after_step", i}, {"event_log_bytes", {{"ufs0", i < 5 ? 0 : text.size()}}}});
    }
    json scenario = {
        {"controllers",
         {{{"id", "ufs0"}, {"keyslots", 8}, {"lus", {{{"name", "ua"}, {"lun", 0}}}}}}}};
    std::printf("generated %zu events (%zu CE/plain io), %.1f MB of log\n", n_events,
                static_cast<std::size_t>(ios), static_cast<double>(text.size()) / 1e6);

    // ---- measure ----
    icemu::checker::Inputs in;
    in.scenario = scenario;
    in.run = run;
    const double c0 = cpu_seconds();
    const auto w0 = std::chrono::steady_clock::now();
    in.logs["ufs0"] = icemu::checker::parse_log_text("ufs0", text);
    const double c1 = cpu_seconds();
    const auto w1 = std::chrono::steady_clock::now();
    const auto v = icemu::checker::check(in);
    const double c2 = cpu_seconds();
    const auto w2 = std::chrono::steady_clock::now();
    if (!in.logs["ufs0"].error.empty() || in.logs["ufs0"].events.size() != n_events) {
        std::fprintf(stderr, "parse failed: %s\n", in.logs["ufs0"].error.c_str());
        return 1;
    }
    if (icemu::checker::any_failed(v)) {
        std::fputs(icemu::checker::format_text(v).c_str(), stderr);
        std::fprintf(stderr, "the generated log should pass every invariant\n");
        return 1;
    }
    const double n = static_cast<double>(n_events);
    auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    std::printf("parse : %.3f s cpu (%.3f s wall)  %.2f M events/s\n", c1 - c0, secs(w0, w1),
                n / (c1 - c0) / 1e6);
    std::printf("replay: %.3f s cpu (%.3f s wall)  %.2f M events/s\n", c2 - c1, secs(w1, w2),
                n / (c2 - c1) / 1e6);
    std::printf("total : %.3f s cpu  %.2f M events/s (parse + replay through the models; target "
                ">= 3 M/s)\n",
                c2 - c0, n / (c2 - c0) / 1e6);
    std::printf("verdict 1: %s\nverdict 2: %s\n", v[1].reason.c_str(), v[2].reason.c_str());
    return 0;
}
