// icemu-check unit tests: synthetic runs built in code (run.json + event logs + images), a
// known-good run that passes, and crafted bad runs the checker must FAIL (docs/checker.md "Tests").
#include "icemu/checker/checker.hpp"

#include "icemu/models/fscrypt.hpp"
#include "icemu/models/hw_wrapped.hpp"
#include "icemu/models/xts.hpp"
#include "icemu/pattern.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <fstream>

using namespace icemu::checker;
namespace ev = icemu::models::events;
namespace fc = icemu::models::fscrypt;
using Catch::Matchers::ContainsSubstring;
using icemu::models::Bytes;

namespace {

const std::string kMaster = "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
                            "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f";
const std::string kUuid = "3f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
constexpr std::uint64_t kIno = 12;
constexpr std::uint64_t kUaSectors = 32768; // 16 MiB
constexpr std::uint64_t kUbSectors = 98304; // 48 MiB

Bytes uuid_bytes() {
    std::string h;
    for (char c : kUuid) {
        if (c != '-') {
            h.push_back(c);
        }
    }
    return icemu::models::from_hex(h);
}

Bytes lblk64_key() {
    return fc::iv_ino_lblk_64_key(icemu::models::from_hex(kMaster), uuid_bytes());
}
std::string lblk64_fp() {
    return icemu::models::key_fingerprint(lblk64_key());
}
std::uint64_t dun64(std::uint64_t index) {
    return kIno << 32 | index;
}

// Builds run.json, the scenario and the per-controller logs step by step.
struct Fixture {
    json scenario, run;
    std::map<std::string, std::string> text;
    std::map<std::string, std::uint64_t> seq;
    std::map<std::string, std::map<unsigned, std::string>> slots; // armed slot -> fp
    std::uint64_t t = 0;
    bool key_manager = false; ///< realize says wrapped_keys (crypto-wrapped-keys=on)
    bool raw_keys = true;     ///< with the key manager: realize raw_keys (false: wrapped only)

    explicit Fixture(bool km = false, bool raw = true) : key_manager(km), raw_keys(raw) {
        scenario = {{"name", "t"},
                    {"controllers",
                     {{{"id", "ufs0"},
                       {"crypto", true},
                       {"keyslots", 8},
                       {"caps", "aes-xts-256:0x0f"},
                       {"lus", {{{"name", "ua"}, {"lun", 0}, {"size", "16M"}}}}},
                      {{"id", "ufs1"},
                       {"crypto", true},
                       {"keyslots", 4},
                       {"caps", "aes-xts-256:0x09"},
                       {"lus", {{{"name", "ub"}, {"lun", 0}, {"size", "48M"}}}}}}}};
        run = {
            {"hello", {{"release", "7.3.4"}}},
            {"engine", true},
            {"disk_map",
             {{"ua", {{"name", "sdb"}, {"dev_path", "/dev/sdb"}, {"dev", "8:16"}}},
              {"ub", {{"name", "sdc"}, {"dev_path", "/dev/sdc"}, {"dev", "8:32"}}}}},
            {"boot_disks",
             {{"disks", json::array({lu_disk("sdb", 8, "0x1e00"), lu_disk("sdc", 4, "0x1200")})}}},
            {"steps", json::array()},
            {"snapshots", json::array()}};
        realize("ufs0", 8, 0x0f);
        realize("ufs1", 4, 0x09);
        snapshot();
    }

    static json lu_disk(const std::string& name, unsigned slots, const std::string& mask) {
        return {
            {"name", name},
            {"crypto",
             {{"max_dun_bits", 64}, {"num_keyslots", slots}, {"modes", {{"AES-256-XTS", mask}}}}}};
    }

    /// Controller 1 becomes an eMMC: emmc0 (sdhci-pci + CQHCI, 8 slots, AES-256-XTS 512..4096,
    /// 32-bit DUNs) whose disk "ea" is mmcblk0 of `size`, in place of ufs1; the logs start over
    /// with both controllers realized and enabled.
    void replace_ufs1_with_emmc(const std::string& size) {
        scenario["controllers"][1] = {{"id", "emmc0"},
                                      {"type", "emmc"},
                                      {"crypto", true},
                                      {"keyslots", 8},
                                      {"caps", "aes-xts-256:0x0f"},
                                      {"name", "ea"},
                                      {"size", size}};
        run["disk_map"] = {
            {"ua", {{"name", "sdb"}, {"dev_path", "/dev/sdb"}, {"dev", "8:16"}}},
            {"ea", {{"name", "mmcblk0"}, {"dev_path", "/dev/mmcblk0"}, {"dev", "179:0"}}}};
        run["boot_disks"] = {{"disks", {lu_disk("sdb", 8, "0x1e00"), emmc_disk()}}};
        run["snapshots"] = json::array();
        text.clear();
        seq.clear();
        realize("ufs0", 8, 0x0f);
        ev::Realize r;
        r.slots = 8;
        r.cfgptr = 0x02;
        r.caps = {ev::CapEntry{0, 0, 0x0f, 3}};
        r.wipe_on_disable = false;
        r.frontend = "cqhci";
        emit("emmc0", r);
        emit("emmc0", ev::Enable{true, true});
        snapshot();
    }
    /// FS_IOC_REMOVE_ENCRYPTION_KEY of identifier `id` on /mnt (no file busy), then, unless
    /// !then_umount, the unmount of /mnt.
    void remove_key(const std::string& id, const std::string& label, bool then_umount = true) {
        step("remove_key", {{"mnt", "/mnt"}, {"identifier", id}}, {{"files_busy", false}}, label);
        if (then_umount) {
            step("umount", {{"dir", "/mnt"}});
        }
    }
    /// The eMMC's disks entry: mmcblk0, 8 slots, AES-256-XTS 512..4096, 32-bit DUNs.
    static json emmc_disk() {
        json d = lu_disk("mmcblk0", 8, "0x1e00");
        d["crypto"]["max_dun_bits"] = 32;
        return d;
    }

    void emit(const std::string& ctrl, ev::Body b) {
        ev::Event e;
        e.seq = seq[ctrl]++;
        e.t_ns = ++t;
        e.ctrl = ctrl;
        e.body = std::move(b);
        text[ctrl] += ev::to_json_line(e) + "\n";
    }
    void realize(const std::string& ctrl, unsigned n, unsigned sdusb) {
        ev::Realize r;
        r.slots = n;
        r.cfgptr = 0x20;
        r.caps = {ev::CapEntry{0, 0, sdusb, 3}};
        r.wipe_on_disable = true;
        r.frontend = "ufs";
        if (key_manager) {
            r.wrapped_keys = true;
            r.raw_keys = raw_keys;
        }
        emit(ctrl, r);
        emit(ctrl, ev::Enable{true, true});
    }
    void program(const std::string& ctrl, unsigned slot, const std::string& fp,
                 unsigned dusize = 4096) {
        if (slots[ctrl].count(slot)) {
            emit(ctrl, ev::Disarm{slot});
        }
        ev::Program p;
        p.slot = slot;
        p.dusize = dusize;
        p.key_fp = fp;
        p.ok = true;
        emit(ctrl, p);
        slots[ctrl][slot] = fp;
    }
    void km(const std::string& ctrl, ev::KmOp op, const std::string& master_fp,
            std::optional<unsigned> slot = std::nullopt) {
        emit(ctrl, ev::Km{op, true, "", slot, master_fp});
    }
    /// The key manager's PROGRAM of `master` into `slot` (unless !with_km) and the wrapped
    /// program event it logs; key_fp defaults to the hardware KDF's inline key of `master`.
    void wrapped_program(const std::string& ctrl, unsigned slot, const Bytes& master,
                         bool with_km = true, std::string key_fp = "", std::string master_fp = "") {
        if (key_fp.empty()) {
            key_fp = icemu::models::key_fingerprint(
                icemu::models::hw_wrapped::inline_encryption_key(master));
        }
        if (master_fp.empty()) {
            master_fp = icemu::models::key_fingerprint(master);
        }
        if (with_km) {
            km(ctrl, ev::KmOp::program, master_fp, slot);
        }
        ev::Program p;
        p.slot = slot;
        p.dusize = 4096;
        p.key_fp = key_fp;
        p.ok = true;
        p.wrapped = true;
        emit(ctrl, p);
        slots[ctrl][slot] = key_fp;
    }
    void evict(const std::string& ctrl, unsigned slot) {
        if (slots[ctrl].erase(slot)) {
            emit(ctrl, ev::Disarm{slot});
        }
        emit(ctrl, ev::Evict{slot, false});
    }
    void wipe(const std::string& ctrl) {
        emit(ctrl, ev::Enable{false, true});
        emit(ctrl, ev::Wipe{ev::WipeReason::disable, static_cast<unsigned>(slots[ctrl].size())});
        slots[ctrl].clear();
    }
    void io(const std::string& ctrl, ev::IoOp op, std::uint64_t lba, std::uint64_t blocks, bool ce,
            int slot = -1, std::uint64_t dun = 0, std::string fp = "") {
        ev::Io x;
        x.slot = ce ? slot : -1;
        x.ce = ce;
        x.op = op;
        x.opcode = op == ev::IoOp::write ? 0x2a : 0x28;
        x.lba = lba;
        x.blocks = blocks;
        x.bytes = blocks * 4096;
        x.block_size = 4096;
        x.dun = ce ? dun : 0;
        x.dusize = ce ? 4096 : 0;
        x.key_fp =
            ce ? (fp.empty() && slot >= 0 ? slots[ctrl][static_cast<unsigned>(slot)] : fp) : "";
        x.queue = "sdb";
        if (ce && slot >= 0 && !slots[ctrl].count(static_cast<unsigned>(slot))) {
            x.ocs = 9;
            x.status = -1;
            x.bytes = 0;
            x.error = "disarmed";
            x.key_fp = "";
            x.dusize = 0;
        }
        emit(ctrl, x);
    }
    void snapshot() {
        json cs = json::object(), marks = json::object();
        for (const auto& [ctrl, txt] : text) {
            json sl = json::array();
            for (unsigned s = 0; s < 8; ++s) {
                const bool armed = slots[ctrl].count(s) != 0;
                sl.push_back({{"slot", s},
                              {"armed", armed},
                              {"valid", armed},
                              {"key_fp", armed ? slots[ctrl][s] : ""}});
            }
            cs[ctrl] = {{"enabled", true}, {"slots", sl}};
            marks[ctrl] = txt.size();
        }
        run["snapshots"].push_back({{"after_step", run["snapshots"].size()},
                                    {"crypto_state", cs},
                                    {"event_log_bytes", marks}});
    }
    void step(const std::string& op, json request, json reply = json::object(),
              const std::string& label = "") {
        request["op"] = op;
        reply["ok"] = !reply.contains("errno_name");
        run["steps"].push_back({{"index", run["steps"].size() + 1},
                                {"op", op},
                                {"label", label},
                                {"request", request},
                                {"reply", reply}});
        snapshot();
    }
    Inputs inputs() const {
        Inputs in;
        in.scenario = scenario;
        in.run = run;
        for (const auto& [ctrl, txt] : text) {
            in.logs[ctrl] = parse_log_text(ctrl, txt);
        }
        return in;
    }

    // ---- canned step sequences ----
    void dm_linear(const std::vector<std::pair<std::string, std::uint64_t>>& devs,
                   const std::string& label = "", bool create = true) {
        if (create) {
            step("dm_create", {{"name", "lin"}}, {{"sysname", "dm-0"}, {"dev", "254:0"}});
        }
        json table = json::array();
        std::uint64_t start = 0;
        for (const auto& [dev, len] : devs) {
            table.push_back(
                {{"start", start}, {"len", len}, {"type", "linear"}, {"params", dev + " 0"}});
            start += len;
        }
        step("dm_load", {{"name", "lin"}, {"table", table}}, json::object(), label);
        step("dm_resume", {{"name", "lin"}});
    }
    void fs_and_key(const std::string& dev = "/dev/mapper/lin") {
        step("mkfs", {{"dev", dev}, {"uuid", kUuid}});
        step("mount", {{"dev", dev}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
        const std::string id = identifier();
        step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
        step("set_policy", {{"dir", "/mnt/d64"}, {"identifier", id}, {"flags", "iv_ino_lblk_64"}},
             {{"policy", {{"flags", 0x0b}, {"log2_data_unit_size", 0}}}});
    }
    // write_file of /mnt/d64/f (seed 7), then its file_info: one extent of `size` bytes at
    // 1 MiB of the filesystem's device.
    void file_at_1mib(std::uint64_t size) {
        step("write_file", {{"path", "/mnt/d64/f"}, {"size", size}, {"seed", 7}},
             {{"ino", kIno}, {"size", size}});
        step("file_info", {{"path", "/mnt/d64/f"}},
             {{"ino", kIno},
              {"size", size},
              {"extents",
               {{{"logical", 0}, {"physical", 1 << 20}, {"length", size}, {"flags", 1}}}}});
    }
    std::string identifier() const {
        return icemu::models::to_hex(fc::key_identifier(icemu::models::from_hex(kMaster)));
    }
};

// The known-good run: dm-linear over ufs0 (ua) + ufs1 (ub), an IV_INO_LBLK_64 file of 8 blocks,
// blocks 0-3 at ua LBA 1000 and blocks 4-7 at ub LBA 500 (dm byte 16 MiB + 500*4096).
struct GoodRun {
    bool shift_dun = false, wrong_key = false, plaintext = false, miss_evict_ufs1 = false;
    bool sysfs_wrong = false;
    bool as_write_files = false; ///< one write_files step instead of write_file + file_info
    /// a reboot first, after which ua and ub come back as sdc and sdb (as the runner's reply
    /// says in "disk_map", unless reboot_map_missing)
    bool swapped_by_reboot = false, reboot_map_missing = false;

    Fixture build() const {
        Fixture f;
        std::string ua = "sdb", ub = "sdc";
        if (swapped_by_reboot) {
            std::swap(ua, ub);
            json map = {{"ua", {{"name", ua}, {"dev_path", "/dev/" + ua}, {"dev", "8:32"}}},
                        {"ub", {{"name", ub}, {"dev_path", "/dev/" + ub}, {"dev", "8:16"}}}};
            f.emit("ufs0", ev::Enable{true, true}); // the second boot's probe
            f.emit("ufs1", ev::Enable{true, true});
            f.step("reboot", json::object(),
                   reboot_map_missing ? json::object() : json{{"disk_map", map}});
        }
        f.dm_linear({{"/dev/" + ua, kUaSectors}, {"/dev/" + ub, kUbSectors}});
        json dmd = {{"name", "dm-0"},
                    {"dm_name", "lin"},
                    {"crypto",
                     {{"max_dun_bits", 64},
                      {"num_keyslots", 0},
                      {"modes", {{"AES-256-XTS", sysfs_wrong ? "0x1e00" : "0x1200"}}}}}};
        f.step("disks", json::object(),
               {{"disks",
                 {Fixture::lu_disk(ua, 8, "0x1e00"), Fixture::lu_disk(ub, 4, "0x1200"), dmd}}});
        f.fs_and_key();
        const std::string fp = lblk64_fp();
        f.program("ufs0", 0, wrong_key ? std::string("00112233445566ff") : fp);
        f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, dun64(0));
        if (plaintext) {
            f.io("ufs1", ev::IoOp::write, 500, 4, false);
        } else {
            f.program("ufs1", 0, fp);
            f.io("ufs1", ev::IoOp::write, 500, 4, true, 0,
                 dun64(4) + (shift_dun ? kUaSectors * 512 / 4096 : 0));
        }
        json info = {{"ino", kIno},
                     {"size", 32768},
                     {"nonce", "000102030405060708090a0b0c0d0e0f"},
                     {"extents",
                      {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 0}},
                       {{"logical", 16384},
                        {"physical", kUaSectors * 512 + 500 * 4096},
                        {"length", 16384},
                        {"flags", 1}}}}};
        if (as_write_files) {
            json req = {{"path", "/mnt/d64/f"}, {"size", 32768}, {"seed", 7}};
            info["path"] = "/mnt/d64/f";
            f.step("write_files", {{"files", json::array({req})}, {"threads", 1}},
                   {{"files", json::array({info})}, {"threads", 1}});
        } else {
            f.step("write_file", {{"path", "/mnt/d64/f"}, {"size", 32768}, {"seed", 7}},
                   {{"ino", kIno}, {"size", 32768}});
            f.step("file_info", {{"path", "/mnt/d64/f"}}, info);
        }
        f.evict("ufs0", 0);
        if (!miss_evict_ufs1 && !plaintext) {
            f.evict("ufs1", 0);
        }
        f.remove_key(f.identifier(), "rm");
        f.step("dm_remove", {{"name", "lin"}});
        return f;
    }
};

const Verdict& verdict(const std::vector<Verdict>& v, int n) {
    for (const auto& x : v) {
        if (x.invariant == n) {
            return x;
        }
    }
    FAIL("no verdict for invariant " << n);
    return v.front();
}

std::string all_details(const Verdict& v) {
    std::string s = v.reason + "\n";
    for (const auto& d : v.details) {
        s += d + "\n";
    }
    return s;
}

// Checks that invariant `n` fails and that its reason and details contain each of `has` and
// none of `lacks` (the shape of every negative case); returns the verdict for further checks.
const Verdict& fails(const std::vector<Verdict>& v, int n, const std::vector<std::string>& has,
                     const std::vector<std::string>& lacks = {}) {
    const Verdict& x = verdict(v, n);
    const std::string d = all_details(x);
    INFO("invariant " << n << ": " << d);
    CHECK(x.status == Status::fail);
    for (const auto& s : has) {
        CHECK_THAT(d, ContainsSubstring(s));
    }
    for (const auto& s : lacks) {
        CHECK_THAT(d, !ContainsSubstring(s));
    }
    return x;
}

// Writes sparse raw images holding the model's ciphertext (or plaintext) of the good run's file.
struct Images {
    std::filesystem::path dir;
    Images() {
        dir = std::filesystem::temp_directory_path() /
              ("icemu-check-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
    }
    ~Images() { std::filesystem::remove_all(dir); }
    std::string write(const std::string& name, std::uint64_t dev_off, std::uint64_t file_off,
                      std::uint64_t len, bool encrypt) {
        const std::string path = (dir / (name + ".img")).string();
        std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
        if (!f) {
            f.open(path, std::ios::binary | std::ios::out);
        }
        Bytes pt(4096), ct(4096);
        icemu::models::XtsCipher c(lblk64_key());
        for (std::uint64_t o = 0; o < len; o += 4096) {
            icemu::pattern::fill(7, file_off + o, pt.data(), pt.size());
            c.encrypt(dun64((file_off + o) / 4096), 4096, pt, ct);
            f.seekp(static_cast<std::streamoff>(dev_off + o));
            const Bytes& b = encrypt ? ct : pt;
            f.write(reinterpret_cast<const char*>(b.data()), 4096);
        }
        return path;
    }
};

} // namespace

TEST_CASE("a known-good dm run over two controllers passes every applicable invariant",
          "[checker]") {
    const auto v = check(GoodRun{}.build().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 0).status == Status::pass);
    CHECK(verdict(v, 1).status == Status::pass);
    CHECK(verdict(v, 1).level == "model");
    CHECK(verdict(v, 2).status == Status::pass);
    CHECK(verdict(v, 3).status == Status::pass);
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK(verdict(v, 5).status == Status::pass);
    CHECK(verdict(v, 6).status == Status::not_applicable);
    CHECK(verdict(v, 7).status == Status::pass);
    CHECK(verdict(v, 8).status == Status::not_applicable);
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
}

TEST_CASE("a reboot that swaps sdX names: the reply's disk map rebinds the disks",
          "[checker][reboot]") {
    GoodRun g;
    g.swapped_by_reboot = true;
    {
        const auto v = check(g.build().inputs());
        INFO(format_text(v));
        CHECK_FALSE(any_failed(v));
        CHECK(verdict(v, 2).status == Status::pass);
        CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
    }
    {
        // the boot's names: /dev/sdc is ub's (ufs1) and the table's sizes are wrong for it
        g.reboot_map_missing = true;
        const auto v = check(g.build().inputs());
        fails(v, 3, {"ufs0 holds 16384 bytes of /mnt/d64/f but received no write"});
        fails(v, 5, {"ufs1/0 ub: num_keyslots 8 != 4"});
    }
}

namespace {

// ext4 on ua (/dev/sdb at boot) with an IV_INO_LBLK_64 file written on ufs0; a reboot then gives
// /dev/sdb to ub and /dev/sdc to ua (scenario 17 on a slow host), the filesystem is mounted again
// from ua's new node and the file read back on ufs0. The filesystem stays on the disk its node
// named when it was made and mounted.
Fixture reboot_remount_run() {
    Fixture f;
    const std::string id = f.identifier(), fp = lblk64_fp();
    json info = {{"ino", kIno},
                 {"size", 16384},
                 {"nonce", "000102030405060708090a0b0c0d0e0f"},
                 {"extents",
                  {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 1}}}}};
    f.step("mkfs", {{"dev", "/dev/sdb"}, {"uuid", kUuid}});
    f.step("mount", {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
    f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
    f.step("set_policy", {{"dir", "/mnt/d64"}, {"identifier", id}, {"flags", "iv_ino_lblk_64"}},
           {{"policy", {{"flags", 0x0b}, {"log2_data_unit_size", 0}}}});
    f.program("ufs0", 0, fp);
    f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, dun64(0));
    f.step("write_file", {{"path", "/mnt/d64/f"}, {"size", 16384}, {"seed", 7}},
           {{"ino", kIno}, {"size", 16384}});
    f.step("file_info", {{"path", "/mnt/d64/f"}}, info);
    f.evict("ufs0", 0);
    f.remove_key(id, "");
    json map = {{"ua", {{"name", "sdc"}, {"dev_path", "/dev/sdc"}, {"dev", "8:32"}}},
                {"ub", {{"name", "sdb"}, {"dev_path", "/dev/sdb"}, {"dev", "8:16"}}}};
    f.emit("ufs0", ev::Enable{true, true}); // the second boot's probe
    f.emit("ufs1", ev::Enable{true, true});
    f.step("reboot", json::object(), {{"disk_map", map}});
    f.step("mount", {{"dev", "/dev/sdc"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
    f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
    f.program("ufs0", 0, fp);
    f.io("ufs0", ev::IoOp::read, 1000, 4, true, 0, dun64(0));
    f.step("read_file", {{"path", "/mnt/d64/f"}, {"seed", 7}}, {{"size", 16384}});
    f.evict("ufs0", 0);
    f.remove_key(id, "", false);
    return f;
}

} // namespace

TEST_CASE("a filesystem made before a reboot that swaps sdX names stays on its disk",
          "[checker][reboot]") {
    const auto v = check(reboot_remount_run().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    // the write before and the read after the reboot, both inside the file's extents on ua
    CHECK_THAT(verdict(v, 1).reason, ContainsSubstring("2 inside reported file extents"));
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
}

TEST_CASE("write_files facts (several files, file_info per file) are used like write_file + "
          "file_info",
          "[checker]") {
    GoodRun g;
    g.as_write_files = true;
    const auto v = check(g.build().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 1).level == "model");
    CHECK(verdict(v, 2).status == Status::pass);
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
    CHECK(verdict(v, 7).status == Status::pass);
}

TEST_CASE("a wrong key under write_files facts fails invariant 1 at model level",
          "[checker][negative]") {
    GoodRun g;
    g.as_write_files = true;
    g.wrong_key = true;
    const auto v = check(g.build().inputs());
    fails(v, 1, {"the fscrypt model expects " + lblk64_fp()});
}

TEST_CASE("a missed eviction on one of two devices fails invariant 4, naming device and slot",
          "[checker][negative]") {
    GoodRun g;
    g.miss_evict_ufs1 = true;
    const auto v = check(g.build().inputs());
    fails(v, 4, {"ufs1 slot 0 still holds " + lblk64_fp(), "QMP snapshot", "event log"},
          {"ufs0 slot"});
    CHECK(any_failed(v));
}

TEST_CASE("a DUN shifted by the dm offset fails invariant 2", "[checker][negative]") {
    GoodRun g;
    g.shift_dun = true;
    const auto v = check(g.build().inputs());
    fails(v, 2, {"ufs1 seq", "+4096 units"});
    CHECK(verdict(v, 1).status == Status::pass); // the key was right
}

TEST_CASE("a wrong key in a slot fails invariant 1 at model level", "[checker][negative]") {
    GoodRun g;
    g.wrong_key = true;
    const auto v = check(g.build().inputs());
    fails(v, 1, {"ufs0 seq", "the fscrypt model expects " + lblk64_fp()});
}

TEST_CASE("crypto I/O with a key other than the slot's last program fails invariant 1",
          "[checker][negative]") {
    Fixture f;
    f.step("sync", json::object());
    f.program("ufs0", 2, "aaaaaaaaaaaaaaaa");
    f.io("ufs0", ev::IoOp::read, 5, 1, true, 2, 77, "bbbbbbbbbbbbbbbb");
    f.step("sync", json::object());
    const auto v = check(f.inputs());
    const Verdict& x = fails(v, 1, {"slot 2 was last programmed with aaaaaaaaaaaaaaaa"});
    CHECK(x.level == "consistency");
}

TEST_CASE("a plaintext write under an encryption policy fails invariant 7", "[checker][negative]") {
    GoodRun g;
    g.plaintext = true;
    const auto v = check(g.build().inputs());
    fails(v, 7, {"ufs1 seq", "not encrypted by the inline engine"});
    CHECK(verdict(v, 3).status == Status::fail); // ufs1 got no crypto write for its part
}

TEST_CASE("a stale slot after a dm reload fails invariant 4", "[checker][negative]") {
    Fixture f;
    f.dm_linear({{"/dev/sdc", kUaSectors}}); // first over ub (ufs1, 0x09)
    f.fs_and_key();
    f.program("ufs1", 1, lblk64_fp());
    f.io("ufs1", ev::IoOp::write, 100, 1, true, 1, dun64(0));
    f.step("write_file", {{"path", "/mnt/d64/f"}, {"size", 4096}, {"seed", 1}}, {{"ino", kIno}});
    // reload onto ua (ufs0, 0x0f: more capable, accepted), resume
    f.dm_linear({{"/dev/sdb", kUaSectors}}, "to-ua", false);
    // remove_key: dm's fan-out reaches only the live table (ufs0, where the key is not)
    f.remove_key(f.identifier(), "rm", false);
    const auto v = check(f.inputs());
    INFO(format_text(v));
    fails(v, 4, {"ufs1 slot 1 still holds " + lblk64_fp(), "IV_INO_LBLK_64 key of master key"});
    CHECK(verdict(v, 6).status == Status::pass); // the reload itself was legal
}

TEST_CASE("a malformed log line is a failure with its line number", "[checker][negative]") {
    Fixture f;
    f.step("sync", json::object());
    Inputs in = f.inputs();
    std::string bad = f.text["ufs0"];
    bad.insert(bad.find('\n') + 1,
               "{\"v\":1,\"seq\":1,\"t_ns\":1,\"ctrl\":\"ufs0\",\"ev\":\"bogus\"}\n");
    in.logs["ufs0"] = parse_log_text("ufs0", bad, "ufs0.events.jsonl");
    CHECK(in.logs["ufs0"].error_line == 2);
    const auto v = check(in);
    fails(v, 0, {"ufs0.events.jsonl: line 2"});
}

TEST_CASE("a torn last line is ignored and noted", "[checker]") {
    Fixture f;
    f.step("sync", json::object());
    std::string t = f.text["ufs0"] + "{\"v\":1,\"se";
    const LogInput l = parse_log_text("ufs0", t);
    CHECK(l.error.empty());
    CHECK(l.torn_tail);
    CHECK(l.events.size() == 2);
}

TEST_CASE("the reload rule: the kernel's verdict must match the model", "[checker]") {
    for (bool kernel_accepts : {false, true}) {
        Fixture f;
        f.dm_linear({{"/dev/sdb", kUaSectors}}); // ufs0 0x0f
        json table = {
            {{"start", 0}, {"len", kUaSectors}, {"type", "linear"}, {"params", "/dev/sdc 0"}}};
        f.step("dm_load", {{"name", "lin"}, {"table", table}},
               kernel_accepts ? json::object() : json{{"errno_name", "EINVAL"}}, "to-fewer-du");
        const auto v = check(f.inputs());
        const Verdict& x = verdict(v, 6);
        INFO(all_details(x));
        CHECK(x.status == (kernel_accepts ? Status::fail : Status::pass));
    }
}

TEST_CASE("the reload rule (7.x): a reload that drops hardware-wrapped keys is refused",
          "[checker][hw_wrapped]") {
    // ufs1 (0x09) has the key manager, ufs0 (0x0f, a superset of its data unit sizes) has not:
    // a table over ufs1 reloaded onto ufs0 loses only the hardware-wrapped key type.
    for (bool kernel_accepts : {false, true}) {
        Fixture f;
        f.text["ufs1"].clear();
        f.seq["ufs1"] = 0;
        f.key_manager = true;
        f.realize("ufs1", 4, 0x09);
        f.key_manager = false;
        f.run["snapshots"][0]["event_log_bytes"]["ufs1"] = f.text["ufs1"].size();
        f.dm_linear({{"/dev/sdc", kUaSectors}});
        json table = {
            {{"start", 0}, {"len", kUaSectors}, {"type", "linear"}, {"params", "/dev/sdb 0"}}};
        f.step("dm_load", {{"name", "lin"}, {"table", table}},
               kernel_accepts ? json::object() : json{{"errno_name", "EINVAL"}}, "to-raw-only");
        const auto v = check(f.inputs());
        const Verdict& x = verdict(v, 6);
        INFO(all_details(x));
        CHECK(x.status == (kernel_accepts ? Status::fail : Status::pass));
    }
}

TEST_CASE("a dm queue/crypto other than the intersection fails invariant 5",
          "[checker][negative]") {
    GoodRun g;
    g.sysfs_wrong = true;
    const auto v = check(g.build().inputs());
    fails(v, 5, {"dm device lin"});
}

TEST_CASE("crypto I/O after a wipe without reprogramming fails invariant 8",
          "[checker][negative]") {
    for (bool reprogram : {true, false}) {
        Fixture f;
        f.program("ufs0", 0, "aaaaaaaaaaaaaaaa");
        f.io("ufs0", ev::IoOp::write, 1, 1, true, 0, 1);
        f.step("sync", json::object());
        f.wipe("ufs0");
        if (reprogram) {
            f.program("ufs0", 0, "aaaaaaaaaaaaaaaa");
        }
        f.emit("ufs0", ev::Enable{true, true});
        f.io("ufs0", ev::IoOp::read, 1, 1, true, 0, 1);
        f.step("sync", json::object());
        const auto v = check(f.inputs());
        const Verdict& x = verdict(v, 8);
        INFO(all_details(x));
        CHECK(x.status == (reprogram ? Status::pass : Status::fail));
        if (!reprogram) {
            CHECK_THAT(all_details(x),
                       ContainsSubstring("before key aaaaaaaaaaaaaaaa was reprogrammed"));
        }
    }
}

TEST_CASE("the medium must hold the model's ciphertext of the known plaintext", "[checker]") {
    for (bool encrypted : {true, false}) {
        Images img;
        Inputs in = GoodRun{}.build().inputs();
        in.images["ua"] = img.write("ua", 1000 * 4096, 0, 16384, true);
        in.images["ub"] = img.write("ub", 500 * 4096, 16384, 16384, encrypted);
        const auto v = check(in);
        const Verdict& x = verdict(v, 7);
        INFO(all_details(x));
        CHECK(x.level == "model (medium)");
        CHECK_THAT(x.reason, ContainsSubstring("8 data unit(s)"));
        CHECK(x.status == (encrypted ? Status::pass : Status::fail));
        if (!encrypted) {
            CHECK_THAT(all_details(x), ContainsSubstring("4 unit(s) hold the PLAINTEXT"));
            CHECK_THAT(all_details(x), ContainsSubstring("file offset 16384"));
        }
    }
}

TEST_CASE("without file facts the checker falls back to consistency and says so", "[checker]") {
    Fixture f;
    f.step("sync", json::object());
    f.program("ufs0", 0, "aaaaaaaaaaaaaaaa");
    f.io("ufs0", ev::IoOp::write, 1, 1, true, 0, 5);
    f.step("sync", json::object());
    const auto v = check(f.inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 1).level == "consistency");
    CHECK(verdict(v, 2).status == Status::not_applicable);
    CHECK(verdict(v, 4).status == Status::not_applicable);
}

TEST_CASE("verdicts serialise to JSON with one entry per invariant", "[checker]") {
    const auto v = check(GoodRun{}.build().inputs());
    const json j = to_json(v);
    CHECK(j["verdicts"].size() == 11);
    CHECK(j["ok"] == true);
    CHECK(j["verdicts"][1]["status"] == "pass");
    CHECK_THAT(format_text(v), ContainsSubstring("icemu-check: PASS"));
}

// models/src/events.cpp has a fast path for compact lines (checker-replay benchmark); it must
// decode exactly what the general reader decodes and leave every rejection to it.
TEST_CASE("the event parser's fast path agrees with the general reader", "[checker][events]") {
    Fixture f;
    f.program("ufs0", 3, "0123456789abcdef");
    f.io("ufs0", ev::IoOp::write, 77, 2, true, 3, 18446744073709551615ull);
    f.io("ufs0", ev::IoOp::read, 5, 1, false);
    std::size_t n = 0;
    std::string_view text = f.text["ufs0"];
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string line(text.substr(0, nl));
        text.remove_prefix(nl + 1);
        ++n;
        // Whitespace after every ':' forces the general reader; both must give the same event.
        std::string spaced;
        for (char c : line) {
            spaced += c;
            if (c == ':') {
                spaced += ' ';
            }
        }
        const ev::Event a = ev::parse_event(line, n);
        const ev::Event b = ev::parse_event(spaced, n);
        CHECK(ev::to_json_line(a) == ev::to_json_line(b));
        CHECK(ev::to_json_line(a) == line);
    }
    CHECK(n == 5); // realize, enable, program, 2 io
    auto error_of = [](const std::string& line) -> std::string {
        try {
            ev::parse_event(line, 9);
        } catch (const ev::LogError& e) {
            return e.what();
        }
        return "";
    };
    const std::string head = R"({"v":1,"seq":1,"t_ns":1,"ctrl":"ufs0","ev":"disarm",)";
    for (const std::string tail :
         {R"("slot":01})", R"("slot":1.0})", R"("slot":99999999999999999999})", R"("slot":-1})",
          R"("slot":1,"slot":2})", R"("slot":1} )", R"("slot":1,"x":null})", R"("slot":"\u0031"})",
          R"("slot":tru})"}) {
        INFO(tail);
        const std::string e = error_of(head + tail);
        if (tail == R"("slot":1,"x":null})" || tail == R"("slot":1} )") {
            CHECK(e.empty()); // valid JSON the fast path leaves to the general reader
        } else {
            CHECK_THAT(e, ContainsSubstring("line 9"));
        }
    }
    CHECK(error_of(head + R"("slot":1,"extra":"x"})").empty());
    CHECK(std::get<ev::Disarm>(ev::parse_event(head + R"("slot":7})").body).slot == 7);
}

TEST_CASE("without extents, keys are checked against the derivable set and LBLK_64 inode fields",
          "[checker][negative]") {
    for (int variant : {0, 1, 2}) { // 0 good, 1 underivable key, 2 wrong inode in the DUN
        Fixture f;
        f.step("mkfs", {{"dev", "/dev/sdb"}, {"uuid", kUuid}});
        f.step("mount", {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
        f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", f.identifier()}});
        f.step("set_policy",
               {{"dir", "/mnt/d64"}, {"identifier", f.identifier()}, {"flags", "iv_ino_lblk_64"}},
               {{"policy", {{"flags", 0x0b}, {"log2_data_unit_size", 0}}}});
        f.program("ufs0", 0, variant == 1 ? std::string("1111111111111111") : lblk64_fp());
        f.io("ufs0", ev::IoOp::write, 900, 2, true, 0,
             variant == 2 ? dun64(0) + (1ull << 32) : dun64(0));
        f.step("write_file", {{"path", "/mnt/d64/f"}, {"size", 8192}, {"seed", 3}},
               {{"ino", kIno}});
        const auto v = check(f.inputs());
        INFO(format_text(v));
        CHECK(verdict(v, 1).status == (variant == 1 ? Status::fail : Status::pass));
        CHECK(verdict(v, 1).level == "model");
        if (variant == 1) {
            CHECK_THAT(all_details(verdict(v, 1)), ContainsSubstring("none of the keys"));
        } else {
            CHECK(verdict(v, 2).status == (variant == 2 ? Status::fail : Status::pass));
            CHECK(verdict(v, 2).level == "model (inode field only)");
        }
        if (variant == 2) {
            CHECK_THAT(all_details(verdict(v, 2)), ContainsSubstring("inode field 13"));
        }
    }
}

namespace {

// dm-striped "lin" over ua (ufs0) and ub (ufs1): 2 stripes of 128-sector (64 KiB) chunks. An
// IV_INO_LBLK_64 file of 128 KiB at dm byte 1 MiB: chunk 16 -> stripe 0 (ua) row 8 (LU byte
// 512 KiB, LBA 128) holds file bytes 0..64 KiB, chunk 17 -> stripe 1 (ub) row 8 (LBA 128) holds
// 64..128 KiB (dm-stripe.c stripe_map_sector).
Fixture striped_run(std::uint64_t ub_dun_shift) {
    Fixture f;
    f.step("dm_create", {{"name", "lin"}}, {{"sysname", "dm-0"}, {"dev", "254:0"}});
    f.step("dm_load", {{"name", "lin"},
                       {"table",
                        {{{"start", 0},
                          {"len", 2 * kUaSectors},
                          {"type", "striped"},
                          {"params", "2 128 /dev/sdb 0 /dev/sdc 0"}}}}});
    f.step("dm_resume", {{"name", "lin"}});
    f.fs_and_key();
    const std::string fp = lblk64_fp();
    f.program("ufs0", 0, fp);
    f.program("ufs1", 0, fp);
    f.io("ufs0", ev::IoOp::write, 128, 16, true, 0, dun64(0));
    f.io("ufs1", ev::IoOp::write, 128, 16, true, 0, dun64(16) + ub_dun_shift);
    f.file_at_1mib(131072);
    return f;
}

// A dm-thin pool "pool" (metadata on the virtio disk vd, data on ub) and a thin device "thin".
Fixture thin_run() {
    Fixture f;
    f.scenario["virtio_disks"] = {{{"name", "vd"}, {"size", "8M"}}};
    f.run["disk_map"]["vd"] = {{"name", "vda"}, {"dev_path", "/dev/vda"}, {"dev", "253:0"}};
    f.step("dm_create", {{"name", "pool"}}, {{"sysname", "dm-0"}, {"dev", "254:0"}});
    f.step("dm_load", {{"name", "pool"},
                       {"table",
                        {{{"start", 0},
                          {"len", kUbSectors},
                          {"type", "thin-pool"},
                          {"params", "/dev/vda /dev/sdc 128 0"}}}}});
    f.step("dm_resume", {{"name", "pool"}});
    f.step("dm_create", {{"name", "thin"}}, {{"sysname", "dm-1"}, {"dev", "254:1"}});
    f.step("dm_load", {{"name", "thin"},
                       {"table",
                        {{{"start", 0},
                          {"len", kUbSectors},
                          {"type", "thin"},
                          {"params", "/dev/mapper/pool 0"}}}}});
    f.step("dm_resume", {{"name", "thin"}});
    json crypto = {
        {"max_dun_bits", 64}, {"num_keyslots", 0}, {"modes", {{"AES-256-XTS", "0x1200"}}}};
    f.step("disks", json::object(),
           {{"disks",
             {Fixture::lu_disk("sdb", 8, "0x1e00"),
              Fixture::lu_disk("sdc", 4, "0x1200"),
              {{"name", "vda"}, {"crypto", nullptr}},
              {{"name", "dm-0"}, {"dm_name", "pool"}, {"crypto", crypto}},
              {{"name", "dm-1"}, {"dm_name", "thin"}, {"crypto", crypto}}}}});
    return f;
}

} // namespace

TEST_CASE("striped segments map file extents onto each stripe's LU", "[checker]") {
    const auto v = check(striped_run(0).inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 2).status == Status::pass);
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
    CHECK(verdict(v, 3).status == Status::pass);
}

TEST_CASE("a DUN off by one chunk on the second stripe fails invariant 2", "[checker][negative]") {
    const auto v = check(striped_run(16).inputs());
    fails(v, 2, {"ufs1 seq", "+16 units"});
}

TEST_CASE("thin-pool passes crypto from its data device only, on 7.x but not on 6.12",
          "[checker]") {
    const Fixture f = thin_run();
    const auto v7 = check(f.inputs());
    INFO(format_text(v7));
    CHECK(verdict(v7, 5).status == Status::pass);
    CHECK_THAT(all_details(verdict(v7, 5)), ContainsSubstring("dm device thin: matches"));
    Options o612;
    o612.kernel = icemu::models::kernel::rules_for("6.12.117");
    const auto v6 = check(f.inputs(), o612);
    fails(v6, 5, {"dm device pool: present, the model says absent"});
}

// An IV_INO_LBLK_64 file of 4 blocks on the thin device: its FIEMAP extents are thin-device
// addresses that no table maps (dm-thin allocates on write), so the medium is checked where
// ufs1's log shows its data units written (LBA 300 of ub) with the file's key and DUNs.
Fixture thin_file_run(std::uint64_t dun_shift) {
    Fixture f = thin_run();
    f.fs_and_key("/dev/mapper/thin");
    f.program("ufs1", 0, lblk64_fp());
    f.io("ufs1", ev::IoOp::write, 300, 4, true, 0, dun64(0) + dun_shift);
    f.file_at_1mib(16384);
    return f;
}

// The medium verdict of thin_file_run(dun_shift) with the file's 16 KiB at ub LBA 300, as the
// model's ciphertext or as plaintext.
Verdict thin_medium(std::uint64_t dun_shift, bool encrypted) {
    Images img;
    Inputs in = thin_file_run(dun_shift).inputs();
    in.images["ub"] = img.write("ub", 300 * 4096, 0, 16384, encrypted);
    return verdict(check(in), 7);
}

TEST_CASE("a file on dm-thin is placed where the log shows its data units written, and its "
          "medium is compared there",
          "[checker]") {
    for (bool encrypted : {true, false}) {
        INFO((encrypted ? "ciphertext" : "plaintext") << " at ub LBA 300");
        const Verdict x = thin_medium(0, encrypted);
        INFO(all_details(x));
        CHECK_THAT(x.reason, ContainsSubstring("4 data unit(s) of 1 file(s) compared"));
        CHECK_THAT(x.reason, ContainsSubstring("1 file(s) whose dm table maps no extent"));
        CHECK(x.status == (encrypted ? Status::pass : Status::fail));
    }
}

TEST_CASE("a file on dm-thin whose DUNs the log never shows is not placed and its medium not "
          "compared",
          "[checker][negative]") {
    const Verdict x = thin_medium(1000, true);
    INFO(all_details(x));
    CHECK(x.status == Status::not_applicable);
    CHECK_THAT(x.reason, ContainsSubstring("no encrypted file with FIEMAP extents"));
}

TEST_CASE("the kernel rules come from the guest's release; an unknown release is an error",
          "[checker]") {
    const Fixture f = thin_run();
    auto in = f.inputs();
    in.run["hello"]["release"] = "6.1.192";
    fails(check(in), 5, {"dm device pool: present, the model says absent"}); // 6.1: no thin
    in.run["hello"]["release"] = "7.3.4-icemu";
    CHECK(verdict(check(in), 5).status == Status::pass);
    // A series the rule table was not read for (or a misspelt release) is not "some 6.x".
    for (const char* rel : {"6.6.60", "6.12", "7.3.4x", ""}) {
        INFO(rel);
        in.run["hello"]["release"] = rel;
        CHECK_THROWS_AS(check(in), std::invalid_argument);
    }
}

TEST_CASE("steps the runner skipped for the kernel are not fed to the models", "[checker]") {
    Fixture f;
    f.scenario["virtio_disks"] = {{{"name", "vd"}, {"size", "8M"}}};
    f.run["disk_map"]["vd"] = {{"name", "vda"}, {"dev_path", "/dev/vda"}, {"dev", "253:0"}};
    f.step("dm_create", {{"name", "lin"}}, {{"sysname", "dm-0"}, {"dev", "254:0"}});
    // a first table over the non-crypto disk, skipped: had it run, the dm device would have no
    // queue/crypto directory for good
    f.run["steps"].push_back(
        {{"index", f.run["steps"].size() + 1},
         {"op", "dm_load"},
         {"label", ""},
         {"request",
          {{"op", "dm_load"},
           {"name", "lin"},
           {"table",
            {{{"start", 0}, {"len", 16384}, {"type", "linear"}, {"params", "/dev/vda 0"}}}}}},
         {"reply", nullptr},
         {"skipped", "needs kernel >=7, the guest runs 6.12.117"}});
    f.snapshot();
    f.dm_linear({{"/dev/sdb", kUaSectors}}, "", false);
    f.step("disks", json::object(),
           {{"disks",
             {Fixture::lu_disk("sdb", 8, "0x1e00"),
              {{"name", "dm-0"},
               {"dm_name", "lin"},
               {"crypto",
                {{"max_dun_bits", 64},
                 {"num_keyslots", 0},
                 {"modes", {{"AES-256-XTS", "0x1e00"}}}}}}}}});
    const auto v = check(f.inputs());
    INFO(format_text(v));
    CHECK(verdict(v, 5).status == Status::pass);
    CHECK(verdict(v, 6).status == Status::not_applicable);
}

namespace {

// dm-inlinecrypt "ic" (aes-xts-plain64, iv_offset 64, 4096-byte sectors) over dm-linear "lin"
// (ua on ufs0 + ub on ufs1). write_dev of 16 KiB at dm byte kUa-8 KiB: 2 units on ua at LU
// byte kUa-8 KiB (LBA 4094), 2 units on ub at 0. DUN = (iv_offset + sector) / 8 (inlinecrypt_map):
// ua: (64 + kUaSectors - 16) / 8 = 4102, ub: (64 + kUaSectors) / 8 = 4104.
const std::string kIcKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                           "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
constexpr std::uint64_t kIcOff = kUaSectors * 512 - 8192;

const std::string kIcKey2 = "f0e0d0c0b0a090807060504030201000f1e1d1c1b1a191817161514131211101"
                            "f2e2d2c2b2a292827262524232221202f3e3d3c3b3a393837363534333231303";

struct IcRun {
    bool ignore_iv_offset = false, miss_evict_ufs1 = false;
    /// Before dm_remove, a reload of "ic" with `reload_key` (empty: none); `reload_evicts`: the
    /// device saw the replaced key evicted from both controllers during the resume.
    std::string reload_key;
    bool reload_evicts = true;
    Fixture build() const {
        Fixture f;
        f.dm_linear({{"/dev/sdb", kUaSectors}, {"/dev/sdc", kUbSectors}});
        f.step("dm_create", {{"name", "ic"}}, {{"sysname", "dm-1"}, {"dev", "254:1"}});
        // ic's table: dm-inlinecrypt over all of lin with `key`, iv_offset 64, 4096-byte sectors
        const auto load_ic = [&f](const std::string& key) {
            f.step("dm_load", {{"name", "ic"},
                               {"table",
                                {{{"start", 0},
                                  {"len", kUaSectors + kUbSectors},
                                  {"type", "inlinecrypt"},
                                  {"params", "aes-xts-plain64 " + key +
                                                 " 64 /dev/mapper/lin 0 2 sector_size:4096 "
                                                 "iv_large_sectors"}}}}});
        };
        load_ic(kIcKey);
        f.step("dm_resume", {{"name", "ic"}});
        const std::string fp = icemu::models::key_fingerprint(icemu::models::from_hex(kIcKey));
        const std::uint64_t shift = ignore_iv_offset ? 8 : 0;
        f.program("ufs0", 2, fp);
        f.io("ufs0", ev::IoOp::write, 4094, 2, true, 2, 4102 - shift);
        f.program("ufs1", 1, fp);
        f.io("ufs1", ev::IoOp::write, 0, 2, true, 1, 4104 - shift);
        f.step("write_dev",
               {{"dev", "/dev/mapper/ic"}, {"offset", kIcOff}, {"size", 16384}, {"seed", 5}},
               {{"bytes", 16384}});
        if (!reload_key.empty()) {
            load_ic(reload_key);
            if (reload_evicts) {
                f.evict("ufs0", 2);
                f.evict("ufs1", 1);
            }
            f.step("dm_resume", {{"name", "ic"}}, json::object(), "reload");
            f.step("dm_remove", {{"name", "ic"}}, json::object(), "rm-ic");
            return f;
        }
        f.evict("ufs0", 2);
        if (!miss_evict_ufs1) {
            f.evict("ufs1", 1);
        }
        f.step("dm_remove", {{"name", "ic"}}, json::object(), "rm-ic");
        return f;
    }
};

std::string ic_image(const std::filesystem::path& dir, const std::string& name,
                     std::uint64_t dev_off, std::uint64_t dm_off, std::uint64_t dun0) {
    const std::string path = (dir / (name + ".img")).string();
    std::ofstream f(path, std::ios::binary);
    Bytes pt(4096), ct(4096);
    icemu::models::XtsCipher c(icemu::models::from_hex(kIcKey));
    for (std::uint64_t k = 0; k < 2; ++k) {
        icemu::pattern::fill(5, dm_off + k * 4096, pt.data(), pt.size());
        c.encrypt(dun0 + k, 4096, pt, ct);
        f.seekp(static_cast<std::streamoff>(dev_off + k * 4096));
        f.write(reinterpret_cast<const char*>(ct.data()), 4096);
    }
    return path;
}

} // namespace

TEST_CASE("dm-inlinecrypt: the table's key and DUN rule predict keys, DUNs and the medium",
          "[checker]") {
    Images img;
    Inputs in = IcRun{}.build().inputs();
    in.images["ua"] = ic_image(img.dir, "ua", kIcOff, kIcOff, 4102);
    in.images["ub"] = ic_image(img.dir, "ub", 0, kIcOff + 8192, 4104);
    const auto v = check(in);
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 1).level == "model");
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
    CHECK(verdict(v, 3).status == Status::pass);
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK_THAT(all_details(verdict(v, 4)), ContainsSubstring("dm_remove"));
    CHECK(verdict(v, 7).status == Status::pass);
    CHECK_THAT(verdict(v, 7).reason, ContainsSubstring("4 data unit(s)"));
    // the same images judged against another key's ciphertext fail
    in.images["ub"] = ic_image(img.dir, "ub", 0, kIcOff, 4104);
    CHECK(verdict(check(in), 7).status == Status::fail);
}

TEST_CASE("dm-inlinecrypt: a DUN without iv_offset fails invariant 2", "[checker][negative]") {
    IcRun r;
    r.ignore_iv_offset = true;
    const auto v = check(r.build().inputs());
    fails(v, 2, {"-8 units"});
}

TEST_CASE("dm-inlinecrypt: a key left on one controller after dm_remove fails invariant 4",
          "[checker][negative]") {
    IcRun r;
    r.miss_evict_ufs1 = true;
    const auto v = check(r.build().inputs());
    fails(v, 4, {"ufs1 slot 1 still holds", "dm-inlinecrypt key of ic"}, {"ufs0 slot"});
}

TEST_CASE("dm-inlinecrypt: a reload with another key evicts the replaced key", "[checker]") {
    IcRun r;
    r.reload_key = kIcKey2;
    const auto v = check(r.build().inputs());
    INFO(format_text(v));
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK_THAT(all_details(verdict(v, 4)),
               ContainsSubstring("dm_resume [reload] ic (table reload)"));
}

TEST_CASE("dm-inlinecrypt: a replaced key left in a slot after the reload fails invariant 4",
          "[checker][negative]") {
    IcRun r;
    r.reload_key = kIcKey2;
    r.reload_evicts = false;
    const auto v = check(r.build().inputs());
    fails(v, 4, {"ufs0 slot 2 still holds", "ufs1 slot 1 still holds", "dm-inlinecrypt key of ic"});
}

TEST_CASE("dm-inlinecrypt: a reload that keeps the key asks no eviction", "[checker]") {
    IcRun r;
    r.reload_key = kIcKey;
    r.reload_evicts = false;
    const auto v = check(r.build().inputs());
    INFO(format_text(v));
    CHECK_THAT(all_details(verdict(v, 4)), !ContainsSubstring("table reload"));
    // dm_remove at the end still asks it: the key stayed in both slots
    fails(v, 4, {"ufs0 slot 2 still holds", "rm-ic"});
}

namespace {

// dm-linear over a UFS LU (ua, 64-bit DUNs) and an eMMC (ea, sdhci-pci + CQHCI: 32-bit DUNs,
// 512-byte LBAs, CMD46/47 tasks), as scenario 13: an IV_INO_LBLK_32 file of 8 blocks, blocks
// 0-3 at ua LBA 1000 (4096-byte blocks) and blocks 4-7 at ea byte 500*4096 (512-byte LBA
// 4000); an IV_INO_LBLK_64 file that the 32-bit DUN limit sends to blk-crypto-fallback (CE=0
// writes of ciphertext on both devices, no key program).
constexpr std::uint64_t kIno32 = 13, kIno64 = 14;

struct EmmcDmRun {
    bool sysfs_64 = false;        ///< the dm device claims 64-bit DUNs (not the intersection)
    bool plain_on_emmc = false;   ///< the eMMC stores part of the LBLK_32 file with CE=0
    bool emmc_dun_shift = false;  ///< the eMMC half carries DUNs shifted by one unit
    bool miss_evict_emmc = false; ///< key removal leaves the key in the eMMC's slot
    bool ce_on_fallback = false;  ///< the eMMC transforms part of the IV_INO_LBLK_64 file

    static Bytes key32() {
        return fc::iv_ino_lblk_32_key(icemu::models::from_hex(kMaster), uuid_bytes());
    }
    static std::uint64_t dun32(std::uint64_t index) {
        const auto h = fc::hashed_ino(fc::inode_hash_key(icemu::models::from_hex(kMaster)), kIno32);
        return fc::dun(fc::Policy::iv_ino_lblk_32, index, kIno32, h);
    }

    Fixture build() const {
        Fixture f;
        f.replace_ufs1_with_emmc("48M");
        const json emmc_disk = Fixture::emmc_disk();

        f.dm_linear({{"/dev/sdb", kUaSectors}, {"/dev/mmcblk0", kUbSectors}});
        json dmd = {{"name", "dm-0"},
                    {"dm_name", "lin"},
                    {"crypto",
                     {{"max_dun_bits", sysfs_64 ? 64 : 32},
                      {"num_keyslots", 0},
                      {"modes", {{"AES-256-XTS", "0x1e00"}}}}}};
        f.step("disks", json::object(),
               {{"disks", {Fixture::lu_disk("sdb", 8, "0x1e00"), emmc_disk, dmd}}});
        f.fs_and_key(); // also sets the IV_INO_LBLK_64 policy on /mnt/d64
        f.step("set_policy",
               {{"dir", "/mnt/d32"}, {"identifier", f.identifier()}, {"flags", "iv_ino_lblk_32"}},
               {{"policy", {{"flags", 0x13}, {"log2_data_unit_size", 0}}}});

        // the IV_INO_LBLK_64 file: fallback, so ordinary writes on both devices, no program
        f.io("ufs0", ev::IoOp::write, 2000, 1, false);
        if (ce_on_fallback) {
            f.program("emmc0", 1, lblk64_fp());
            emmc_io(f, ev::IoOp::write, 300 * 8, 8, true, 1, 1, lblk64_fp());
        } else {
            emmc_io(f, ev::IoOp::write, 300 * 8, 8, false);
        }
        f.step("write_file", {{"path", "/mnt/d64/a"}, {"size", 8192}, {"seed", 1}},
               {{"ino", kIno64}, {"size", 8192}});
        f.step("file_info", {{"path", "/mnt/d64/a"}},
               {{"ino", kIno64},
                {"size", 8192},
                {"nonce", "101112131415161718191a1b1c1d1e1f"},
                {"extents",
                 {{{"logical", 0}, {"physical", 2000 * 4096}, {"length", 4096}, {"flags", 0}},
                  {{"logical", 4096},
                   {"physical", kUaSectors * 512 + 300 * 4096},
                   {"length", 4096},
                   {"flags", 1}}}}});

        // the IV_INO_LBLK_32 file: native on both, the same key programmed on both
        const std::string fp = icemu::models::key_fingerprint(key32());
        f.program("ufs0", 0, fp);
        f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, dun32(0));
        if (plain_on_emmc) {
            emmc_io(f, ev::IoOp::write, 500 * 8, 32, false);
        } else {
            f.program("emmc0", 0, fp);
            emmc_io(f, ev::IoOp::write, 500 * 8, 32, true, 0, dun32(4) + (emmc_dun_shift ? 1 : 0),
                    fp);
        }
        f.step("write_file", {{"path", "/mnt/d32/big"}, {"size", 32768}, {"seed", 7}},
               {{"ino", kIno32}, {"size", 32768}});
        f.step("file_info", {{"path", "/mnt/d32/big"}},
               {{"ino", kIno32},
                {"size", 32768},
                {"nonce", "000102030405060708090a0b0c0d0e0f"},
                {"extents",
                 {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 0}},
                  {{"logical", 16384},
                   {"physical", kUaSectors * 512 + 500 * 4096},
                   {"length", 16384},
                   {"flags", 1}}}}});
        f.evict("ufs0", 0);
        if (!miss_evict_emmc && !plain_on_emmc) {
            f.evict("emmc0", 0);
        }
        f.remove_key(f.identifier(), "rm");
        f.step("dm_remove", {{"name", "lin"}});
        return f;
    }

    // A CQHCI task: CMD47 (write) / CMD46 (read), 512-byte blocks, queue cq:<tag>.
    static void emmc_io(Fixture& f, ev::IoOp op, std::uint64_t lba, std::uint64_t blocks, bool ce,
                        int slot = -1, std::uint64_t dun = 0, const std::string& fp = "") {
        ev::Io x;
        x.slot = ce ? slot : -1;
        x.ce = ce;
        x.op = op;
        x.opcode = op == ev::IoOp::write ? 47 : 46;
        x.lba = lba;
        x.blocks = blocks;
        x.bytes = blocks * 512;
        x.block_size = 512;
        x.dun = ce ? dun : 0;
        x.dusize = ce ? 4096 : 0;
        x.key_fp = ce ? fp : "";
        x.queue = "cq:3";
        f.emit("emmc0", x);
    }
};

} // namespace

TEST_CASE("dm-linear over a UFS LU and an eMMC: 32-bit DUN intersection, keys and DUNs on both",
          "[checker][emmc]") {
    const auto v = check(EmmcDmRun{}.build().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 1).status == Status::pass);
    CHECK(verdict(v, 1).level == "model");
    CHECK(verdict(v, 2).status == Status::pass);
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
    CHECK(verdict(v, 3).status == Status::pass);
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK(verdict(v, 5).status == Status::pass);
    CHECK(verdict(v, 7).status == Status::pass); // the LBLK_64 file's CE=0 writes: fallback
    // the models' decision per file and where its bytes are (dm mapping onto both devices)
    const std::string d3 = all_details(verdict(v, 3));
    CHECK_THAT(d3, ContainsSubstring("/mnt/d64/a (fallback"));
    CHECK_THAT(d3, ContainsSubstring("/mnt/d32/big (native"));
    CHECK_THAT(d3, ContainsSubstring("emmc0 16384 B"));
}

TEST_CASE("dm over UFS + eMMC: a 64-bit DUN claim on the dm device fails invariant 5",
          "[checker][emmc][negative]") {
    EmmcDmRun r;
    r.sysfs_64 = true;
    const auto v = check(r.build().inputs());
    fails(v, 5, {"max_dun_bits"});
}

TEST_CASE("dm over UFS + eMMC: the eMMC's half judged on its own (plaintext, fallback decision, "
          "DUN, eviction)",
          "[checker][emmc][negative]") {
    {
        EmmcDmRun r;
        r.plain_on_emmc = true;
        const auto v = check(r.build().inputs());
        fails(v, 7, {"emmc0 seq", "/mnt/d32/big (file offset 16384"});
    }
    {
        EmmcDmRun r;
        r.ce_on_fallback = true;
        const auto v = check(r.build().inputs());
        const Verdict& x = fails(v, 7,
                                 {"emmc0 seq", "inside /mnt/d64/a (IV_INO_LBLK_64 policy): "
                                               "the models predict blk-crypto-fallback"});
        CHECK_THAT(x.reason, ContainsSubstring("1 CE I/O(s) inside files the models send to "
                                               "blk-crypto-fallback"));
    }
    {
        EmmcDmRun r;
        r.emmc_dun_shift = true;
        const auto v = check(r.build().inputs());
        fails(v, 2, {"emmc0 seq", "+1 units"});
    }
    {
        EmmcDmRun r;
        r.miss_evict_emmc = true;
        const auto v = check(r.build().inputs());
        fails(v, 4, {"emmc0 slot 0 still holds"}, {"ufs0 slot"});
    }
}

// ---- hardware-wrapped keys (invariants 9 and 10; 1-4 with wrapped programs) -------------------

namespace {

namespace hw = icemu::models::hw_wrapped;

const std::string kHwMaster = "9c3f0e5a7b21d4861e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f";
// The ephemeral blob the guest hands to FS_IOC_ADD_ENCRYPTION_KEY (opaque to the checker).
const std::string kEphBlob = std::string(128, 'e');

Bytes hw_master() {
    return icemu::models::from_hex(kHwMaster);
}
std::string hw_inline_fp() {
    return icemu::models::key_fingerprint(hw::inline_encryption_key(hw_master()));
}
std::string hw_master_fp() {
    return icemu::models::key_fingerprint(hw_master());
}

// The known-good run with a hardware-wrapped key: the scenario declares the raw master key, the
// guest imports and prepares it (km events on ufs0), adds the ephemeral blob to the dm-linear
// filesystem over ufs0 + ufs1, and Linux programs the blob on both controllers (each PROGRAM
// logs the inline key's fingerprint); blocks 0-3 of the IV_INO_LBLK_64 file on ufs0, 4-7 on
// ufs1, as GoodRun; removing the key evicts both slots.
struct WrappedRun {
    bool declare_master = true;   ///< scenario var with the raw master key
    bool miss_evict_ufs1 = false; ///< (c) the wrapped slot stays on ufs1
    bool ufs1_other_key = false;  ///< ufs1 is programmed with another master's key
    std::string ufs1_key_fp;      ///< what ufs1's wrapped program logs as key_fp (default: right)
    std::string ufs1_master_fp;   ///< what ufs1's km PROGRAM logs as master_fp (default: right)
    bool second_slot = false;     ///< ufs0 slot 1 is programmed with the same wrapped key too
    bool lblk32_policy = false;   ///< an IV_INO_LBLK_32 policy under the same key (d32)
    /// The guest's own chain instead of a declared master key: import_wrapped_key (raw key ->
    /// long-term blob), prepare_wrapped_key (-> ephemeral blob), add_wrapped_key (-> identifier).
    bool via_ops = false;
    std::string reported_id; ///< what add_wrapped_key replies (default: the right identifier)

    Fixture build() const {
        Fixture f(true);
        if (declare_master) {
            f.scenario["vars"] = {{"mk", kHwMaster}, {"uuid", kUuid}};
        }
        f.dm_linear({{"/dev/sdb", kUaSectors}, {"/dev/sdc", kUbSectors}});
        f.step("mkfs", {{"dev", "/dev/mapper/lin"}, {"uuid", kUuid}});
        f.step("mount", {{"dev", "/dev/mapper/lin"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
        f.km("ufs0", ev::KmOp::import_key, hw_master_fp());
        f.km("ufs0", ev::KmOp::prepare, hw_master_fp());
        f.km("ufs0", ev::KmOp::derive, hw_master_fp());
        const std::string id = reported_id.empty()
                                   ? icemu::models::to_hex(hw::key_identifier(hw_master()))
                                   : reported_id;
        if (via_ops) {
            const std::string lt = std::string(128, 'b');
            f.step("import_wrapped_key", {{"dev", "/dev/sdb"}, {"key", kHwMaster}},
                   {{"lt_blob", lt}});
            f.step("prepare_wrapped_key", {{"dev", "/dev/sdb"}, {"blob", lt}},
                   {{"eph_blob", kEphBlob}});
            f.step("add_wrapped_key", {{"mnt", "/mnt"}, {"blob", kEphBlob}}, {{"identifier", id}});
        } else {
            f.step("add_key", {{"mnt", "/mnt"}, {"key", kEphBlob}, {"hw_wrapped", true}},
                   {{"identifier", id}});
        }
        f.step("set_policy", {{"dir", "/mnt/d64"}, {"identifier", id}, {"flags", "iv_ino_lblk_64"}},
               {{"policy", {{"flags", 0x0b}, {"log2_data_unit_size", 0}}}});
        if (lblk32_policy) {
            f.step("set_policy",
                   {{"dir", "/mnt/d32"}, {"identifier", id}, {"flags", "iv_ino_lblk_32"}},
                   {{"policy", {{"flags", 0x13}, {"log2_data_unit_size", 0}}}});
        }
        f.wrapped_program("ufs0", 0, hw_master());
        f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, dun64(0));
        if (second_slot) {
            f.wrapped_program("ufs0", 1, hw_master());
        }
        const Bytes other = icemu::models::from_hex(std::string(64, '5'));
        f.wrapped_program("ufs1", 0, ufs1_other_key ? other : hw_master(), true, ufs1_key_fp,
                          ufs1_master_fp);
        f.io("ufs1", ev::IoOp::write, 500, 4, true, 0, dun64(4));
        f.step("write_file", {{"path", "/mnt/d64/f"}, {"size", 32768}, {"seed", 7}},
               {{"ino", kIno}, {"size", 32768}});
        f.step("file_info", {{"path", "/mnt/d64/f"}},
               {{"ino", kIno},
                {"size", 32768},
                {"extents",
                 {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 0}},
                  {{"logical", 16384},
                   {"physical", kUaSectors * 512 + 500 * 4096},
                   {"length", 16384},
                   {"flags", 1}}}}});
        f.evict("ufs0", 0);
        if (second_slot) {
            f.evict("ufs0", 1);
        }
        if (!miss_evict_ufs1) {
            f.evict("ufs1", 0);
        }
        f.remove_key(id, "rm");
        f.step("dm_remove", {{"name", "lin"}});
        return f;
    }
};

} // namespace

TEST_CASE("wrapped keys: a dm run over two controllers passes every applicable invariant",
          "[checker][hw_wrapped]") {
    const auto v = check(WrappedRun{}.build().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 0).status == Status::pass);
    // The file's key is the inline key itself, predicted from the declared raw master key; the
    // kernel's identifier is the wrapped kind's.
    CHECK(verdict(v, 1).status == Status::pass);
    CHECK(verdict(v, 1).level == "model");
    CHECK_THAT(all_details(verdict(v, 1)), !ContainsSubstring("no model prediction"));
    CHECK(verdict(v, 2).status == Status::pass);
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
    CHECK(verdict(v, 3).status == Status::pass); // the fan-out, with wrapped programs
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK_THAT(all_details(verdict(v, 4)), ContainsSubstring("1 derived key(s)"));
    CHECK(verdict(v, 9).status == Status::pass);
    CHECK_THAT(verdict(v, 9).reason, ContainsSubstring("2 successful key-manager PROGRAM(s)"));
    const Verdict& w = verdict(v, 10);
    CHECK(w.status == Status::pass);
    CHECK(w.level == "model");
    CHECK_THAT(w.reason, ContainsSubstring("2 checked against the hardware KDF"));
    CHECK_THAT(all_details(w), ContainsSubstring("scenario var mk"));
}

TEST_CASE("wrapped keys: one inline key in two slots is legitimate only when the kernel has "
          "two blk_crypto_keys for it (IV_INO_LBLK_64 and _32)",
          "[checker][hw_wrapped]") {
    {
        WrappedRun r;
        r.second_slot = true;
        r.lblk32_policy = true;
        const auto v = check(r.build().inputs());
        INFO(format_text(v));
        CHECK(verdict(v, 4).status == Status::pass);
        CHECK_THAT(all_details(verdict(v, 4)), !ContainsSubstring("duplicate-key"));
    }
    {
        WrappedRun r; // one IV_INO_LBLK_64 policy: one blk_crypto_key, a second slot is stale
        r.second_slot = true;
        const auto v = check(r.build().inputs());
        fails(v, 4, {"duplicate-key", "programmed into slot 1 while slot 0 still holds it"});
    }
}

TEST_CASE("a reboot step resets every controller: the next probe's evictions are explained",
          "[checker][reboot]") {
    // Before the reboot ufs0 holds a key in slot 0 (its reset logs a wipe) and ufs1 nothing (its
    // reset logs no event); the second boot's probe evicts every slot of both before enabling.
    auto build = [](const std::string& op) {
        Fixture f(true);
        f.program("ufs0", 0, std::string(16, 'a'));
        f.step("kmsg", json::object());
        f.emit("ufs0", ev::Wipe{ev::WipeReason::reset, 1});
        f.slots["ufs0"].clear();
        for (const auto& [ctrl, n] : {std::pair{std::string("ufs0"), 8u}, {"ufs1", 4u}}) {
            for (unsigned s = 0; s < n; ++s) {
                f.emit(ctrl, ev::Evict{s, false});
            }
            f.emit(ctrl, ev::Enable{true, true});
        }
        f.step(op, json::object());
        f.program("ufs0", 0, std::string(16, 'a'));
        f.evict("ufs0", 0);
        f.step("kmsg", json::object());
        return f.inputs();
    };
    {
        const auto v = check(build("reboot"));
        INFO(format_text(v));
        CHECK(verdict(v, 0).status == Status::pass);
        CHECK_THAT(all_details(verdict(v, 0)), !ContainsSubstring("evict-of-empty-slot"));
        CHECK(verdict(v, 4).status != Status::fail);
    }
    {
        // The same log under a guest step: no reset explains ufs1's evictions.
        const auto v = check(build("kmsg"));
        fails(v, 0, {"ufs1 seq", "evict-of-empty-slot"});
    }
}

TEST_CASE("wrapped keys: import, prepare and add_wrapped_key tie the identifier to the raw key",
          "[checker][hw_wrapped]") {
    {
        WrappedRun r;
        r.declare_master = false;
        r.via_ops = true;
        const auto v = check(r.build().inputs());
        INFO(format_text(v));
        CHECK_FALSE(any_failed(v));
        CHECK(verdict(v, 1).status == Status::pass);
        CHECK(verdict(v, 1).level == "model");
        const std::string d = all_details(verdict(v, 1));
        CHECK_THAT(d, !ContainsSubstring("no model prediction"));
    }
    {
        WrappedRun r; // the kernel names the blob's key with another identifier
        r.declare_master = false;
        r.via_ops = true;
        r.reported_id = std::string(32, '7');
        const auto v = check(r.build().inputs());
        fails(v, 1, {"the kernel returned identifier 77777777", "the hardware KDF gives"});
    }
}

TEST_CASE("wrapped keys: on a wrapped-only controller a raw key is not native (fallback)",
          "[checker][hw_wrapped]") {
    // realize raw_keys false: blk_crypto_config_supported_natively fails for a raw key, so
    // fscrypt uses blk-crypto-fallback and the controller sees CE=0 writes of ciphertext.
    auto build = [](bool raw) {
        Fixture f(true, raw);
        f.step("mkfs", {{"dev", "/dev/sdb"}, {"uuid", kUuid}});
        f.step("mount", {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
        f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", f.identifier()}});
        f.step("set_policy",
               {{"dir", "/mnt/d64"}, {"identifier", f.identifier()}, {"flags", "iv_ino_lblk_64"}},
               {{"policy", {{"flags", 0x0b}, {"log2_data_unit_size", 0}}}});
        f.io("ufs0", ev::IoOp::write, 1000, 4, false);
        f.step("write_file", {{"path", "/mnt/d64/f"}, {"size", 16384}, {"seed", 7}},
               {{"ino", kIno}, {"size", 16384}});
        f.step("file_info", {{"path", "/mnt/d64/f"}},
               {{"ino", kIno},
                {"size", 16384},
                {"extents",
                 {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 1}}}}});
        f.remove_key(f.identifier(), "");
        return f.inputs();
    };
    {
        const auto v = check(build(false));
        INFO(format_text(v));
        CHECK(verdict(v, 7).status != Status::fail);
    }
    {
        const auto v = check(build(true)); // raw keys accepted: native expected, CE=0 fails
        fails(v, 7, {"native inline crypto expected"});
    }
}

TEST_CASE("wrapped keys: invariants 9 and 10 do not apply to a run without the key manager",
          "[checker][hw_wrapped]") {
    const auto v = check(GoodRun{}.build().inputs());
    CHECK(verdict(v, 9).status == Status::not_applicable);
    CHECK(verdict(v, 10).status == Status::not_applicable);
    CHECK(verdict(v, 9).reason == "no key-manager event in the logs");
}

TEST_CASE("wrapped keys: a key-manager PROGRAM not followed by its wrapped program fails "
          "invariant 9",
          "[checker][hw_wrapped][negative]") {
    const Bytes mk = hw_master();
    const std::string mfp = hw_master_fp();
    SECTION("followed by an io") {
        Fixture f(true);
        f.km("ufs0", ev::KmOp::program, mfp, 1u);
        f.io("ufs0", ev::IoOp::write, 1, 1, true, 1, 5);
        f.step("sync", json::object());
        fails(check(f.inputs()), 9,
              {"ufs0 seq 3", "PROGRAM of slot 1 (seq 2) succeeded but the next event is \"io\""});
    }
    SECTION("followed by a raw program") {
        Fixture f(true);
        f.km("ufs0", ev::KmOp::program, mfp, 1u);
        f.program("ufs0", 1, "aaaaaaaaaaaaaaaa");
        f.step("sync", json::object());
        fails(check(f.inputs()), 9, {"a raw-key program (no \"wrapped\": true)"});
    }
    SECTION("followed by the wrapped program of another slot") {
        Fixture f(true);
        f.km("ufs0", ev::KmOp::program, mfp, 1u);
        f.wrapped_program("ufs0", 2, mk, false);
        f.step("sync", json::object());
        fails(check(f.inputs()), 9, {"but the next program is of slot 2"});
    }
    SECTION("followed by another km event") {
        Fixture f(true);
        f.km("ufs0", ev::KmOp::program, mfp, 1u);
        f.wrapped_program("ufs0", 1, mk);
        f.step("sync", json::object());
        fails(check(f.inputs()), 9, {"the next event is another km event"});
    }
    SECTION("at the end of the log") {
        Fixture f(true);
        f.km("ufs0", ev::KmOp::program, mfp, 3u);
        f.step("sync", json::object());
        fails(check(f.inputs()), 9, {"the log ends before its program event"});
    }
    SECTION("a wrapped program without a PROGRAM before it") {
        Fixture f(true);
        f.wrapped_program("ufs1", 0, mk, false);
        f.step("sync", json::object());
        fails(check(f.inputs()), 9,
              {"ufs1 seq 2", "wrapped program of slot 0 without a successful key-manager PROGRAM"});
    }
    SECTION("a refused PROGRAM is no pair; only the PROGRAM before it fails") {
        Fixture f(true);
        f.km("ufs0", ev::KmOp::program, mfp, 1u);
        f.emit("ufs0", ev::Km{ev::KmOp::program, false, "blob", 2u, ""}); // refused: no program
        f.wrapped_program("ufs0", 1, mk);
        f.step("sync", json::object());
        const auto v = check(f.inputs());
        INFO(format_text(v));
        // the first PROGRAM is followed by a km event: exactly that one failure
        const Verdict& x = fails(v, 9, {"seq 3", "another km event"}, {"seq 4", "seq 5"});
        CHECK_THAT(x.reason, ContainsSubstring("1 failure(s)"));
    }
}

TEST_CASE("wrapped keys: a key that is not the hardware KDF's of the declared master fails "
          "invariant 10",
          "[checker][hw_wrapped][negative]") {
    SECTION("the device programmed another key for the declared master (e.g. the raw master)") {
        WrappedRun r;
        r.ufs1_key_fp = hw_master_fp();
        const auto v = check(r.build().inputs());
        fails(v, 10,
              {"ufs1 seq", "slot 0: programmed key " + hw_master_fp(),
               "whose inline key by the hardware KDF is " + hw_inline_fp(), "scenario var mk"},
              {"ufs0 seq"});
        // and the file's I/O on ufs1 no longer matches the model's key (invariant 1)
        fails(v, 1, {"the fscrypt model expects " + hw_inline_fp()});
    }
    SECTION("the right key, but the km PROGRAM names another master key") {
        WrappedRun r;
        r.ufs1_master_fp = "00112233445566ff";
        fails(check(r.build().inputs()), 10,
              {"is the inline key of the raw master key scenario var mk",
               "logged master_fp 00112233445566ff"});
    }
    SECTION("a master key the run never declared nor generated") {
        WrappedRun r;
        r.ufs1_other_key = true;
        const auto v = check(r.build().inputs());
        fails(v, 10, {"derived from none of the 1 raw master key(s)"});
        // dm fan-out: ufs1 received I/O for the file but never got the file's (wrapped) key
        fails(v, 3, {"ufs1", "was never programmed with its key " + hw_inline_fp()});
    }
    SECTION("one master key, two inline keys (no raw key declared: consistency level)") {
        WrappedRun r;
        r.declare_master = false;
        r.ufs1_key_fp = "0123456789abcdef";
        const auto v = check(r.build().inputs());
        const Verdict& x = fails(v, 10, {"armed as key 0123456789abcdef", "one inline key"});
        CHECK(x.level == "consistency");
    }
}

TEST_CASE("wrapped keys: a generated master key is judged for consistency only",
          "[checker][hw_wrapped]") {
    const Bytes gen = icemu::models::from_hex(std::string(64, '7'));
    const std::string gfp = icemu::models::key_fingerprint(gen);
    Fixture f(true);
    f.scenario["vars"] = {{"mk", kHwMaster}};
    f.km("ufs0", ev::KmOp::generate, gfp);
    f.km("ufs0", ev::KmOp::prepare, gfp);
    f.wrapped_program("ufs0", 0, gen);
    f.wrapped_program("ufs1", 1, gen);
    f.wrapped_program("ufs1", 2, hw_master());
    f.step("sync", json::object());
    const auto v = check(f.inputs());
    INFO(format_text(v));
    const Verdict& x = verdict(v, 10);
    CHECK(x.status == Status::pass);
    CHECK(x.level == "model+consistency");
    CHECK_THAT(x.reason, ContainsSubstring("3 wrapped program(s): 1 checked against"));
    CHECK_THAT(x.reason, ContainsSubstring("2 only for one inline key per master key"));
}

TEST_CASE("wrapped keys: a wrapped slot left on one controller after remove_key fails "
          "invariant 4",
          "[checker][hw_wrapped][negative]") {
    WrappedRun r;
    r.miss_evict_ufs1 = true;
    const auto v = check(r.build().inputs());
    fails(v, 4,
          {"ufs1 slot 0 still holds " + hw_inline_fp(),
           "inline encryption key of hardware-wrapped master key", "QMP snapshot", "event log"},
          {"ufs0 slot"});
}

TEST_CASE("wrapped keys: without the raw master key the files are not predicted, and say why",
          "[checker][hw_wrapped]") {
    WrappedRun r;
    r.declare_master = false;
    const auto v = check(r.build().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK_THAT(all_details(verdict(v, 1)),
               ContainsSubstring("a hardware-wrapped key whose raw master key the checker does "
                                 "not know"));
    CHECK(verdict(v, 10).level == "consistency");
    CHECK(verdict(v, 4).status == Status::not_applicable);
}

// ---- hardware-wrapped keys on the eMMC (CQHCI front end) --------------------------------------

namespace {

// Scenario 20's shape: one eMMC (sdhci-pci + CQHCI) with the key manager, a hardware-wrapped key
// imported, prepared and added on it, an IV_INO_LBLK_32 file of 4 blocks at ea byte 200*4096
// (512-byte LBA 1600), written by one CQHCI task (CMD47) with the wrapped key in slot 0.
struct EmmcWrappedRun {
    std::string key_fp; ///< what the wrapped program logs as key_fp (default: right)

    static std::uint64_t dun32(std::uint64_t index) {
        const auto h = fc::hashed_ino(hw::inode_hash_key(hw_master()), kIno);
        return fc::dun(fc::Policy::iv_ino_lblk_32, index, kIno, h);
    }

    Fixture build() const {
        Fixture f(true);
        f.scenario = {{"name", "t"},
                      {"vars", {{"mk", kHwMaster}, {"uuid", kUuid}}},
                      {"controllers",
                       {{{"id", "emmc0"},
                         {"type", "emmc"},
                         {"crypto", true},
                         {"keyslots", 8},
                         {"caps", "aes-xts-256:0x0f"},
                         {"wrapped_keys", true},
                         {"name", "ea"},
                         {"size", "64M"}}}}};
        const json emmc_disk = Fixture::emmc_disk();
        f.run["disk_map"] = {
            {"ea", {{"name", "mmcblk0"}, {"dev_path", "/dev/mmcblk0"}, {"dev", "179:0"}}}};
        f.run["boot_disks"] = {{"disks", {emmc_disk}}};
        f.run["snapshots"] = json::array();
        f.text.clear();
        f.seq.clear();
        f.slots.clear();
        ev::Realize r;
        r.slots = 8;
        r.cfgptr = 0x02;
        r.caps = {ev::CapEntry{0, 0, 0x0f, 3}};
        r.wipe_on_disable = false;
        r.frontend = "cqhci";
        r.wrapped_keys = true;
        r.raw_keys = true;
        f.emit("emmc0", r);
        f.emit("emmc0", ev::Enable{true, true});
        f.snapshot();

        f.step("mkfs", {{"dev", "/dev/mmcblk0"}, {"uuid", kUuid}});
        f.step("mount", {{"dev", "/dev/mmcblk0"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
        f.km("emmc0", ev::KmOp::import_key, hw_master_fp());
        f.km("emmc0", ev::KmOp::prepare, hw_master_fp());
        f.km("emmc0", ev::KmOp::derive, hw_master_fp());
        const std::string id = icemu::models::to_hex(hw::key_identifier(hw_master()));
        f.step("add_key", {{"mnt", "/mnt"}, {"key", kEphBlob}, {"hw_wrapped", true}},
               {{"identifier", id}});
        f.step("set_policy", {{"dir", "/mnt/d32"}, {"identifier", id}, {"flags", "iv_ino_lblk_32"}},
               {{"policy", {{"flags", 0x13}, {"log2_data_unit_size", 0}}}});
        f.wrapped_program("emmc0", 0, hw_master(), true, key_fp);
        EmmcDmRun::emmc_io(f, ev::IoOp::write, 200 * 8, 32, true, 0, dun32(0), f.slots["emmc0"][0]);
        f.step("write_file", {{"path", "/mnt/d32/a"}, {"size", 16384}, {"seed", 7}},
               {{"ino", kIno}, {"size", 16384}});
        f.step("file_info", {{"path", "/mnt/d32/a"}},
               {{"ino", kIno},
                {"size", 16384},
                {"extents",
                 {{{"logical", 0}, {"physical", 200 * 4096}, {"length", 16384}, {"flags", 1}}}}});
        f.evict("emmc0", 0);
        f.remove_key(id, "rm");
        return f;
    }
};

} // namespace

TEST_CASE("wrapped keys on an eMMC (CQHCI): invariants 9 and 10 judge its km and wrapped program "
          "events like UFS ones",
          "[checker][hw_wrapped][emmc]") {
    const auto v = check(EmmcWrappedRun{}.build().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 0).status == Status::pass);
    CHECK(verdict(v, 1).status == Status::pass);
    CHECK(verdict(v, 1).level == "model");
    CHECK(verdict(v, 2).status == Status::pass);
    // the task's first and last data unit against fscrypt's IV_INO_LBLK_32 DUN
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("2 data unit(s)"));
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK(verdict(v, 9).status == Status::pass);
    CHECK_THAT(verdict(v, 9).reason, ContainsSubstring("1 successful key-manager PROGRAM(s)"));
    CHECK(verdict(v, 10).status == Status::pass);
    CHECK(verdict(v, 10).level == "model");
    CHECK_THAT(verdict(v, 10).reason, ContainsSubstring("1 checked against the hardware KDF"));
}

TEST_CASE("wrapped keys on an eMMC (CQHCI): a key other than the hardware KDF's fails invariant 10",
          "[checker][hw_wrapped][emmc][negative]") {
    EmmcWrappedRun r;
    r.key_fp = hw_master_fp(); // the raw master key itself in the slot
    const auto v = check(r.build().inputs());
    fails(v, 10,
          {"emmc0 seq", "slot 0: programmed key " + hw_master_fp(),
           "whose inline key by the hardware KDF is " + hw_inline_fp()});
    fails(v, 1, {"the fscrypt model expects " + hw_inline_fp()});
}

// ---- F2FS: multi-device filesystems and contents modes the engine does not offer --------------

namespace {

// A multi-device F2FS (mkfs.f2fs -c /dev/mmcblk0 /dev/sdb) over a 64 MiB UFS LU (ua, main
// device) and a 64 MiB eMMC (ea), as scenario 31 was first written (f2fs-tools refuses devices of
// different sector sizes, so 31 uses two UFS controllers; the model takes any): the filesystem's
// byte addresses are ua's [0, 64 MiB) and then ea's. An IV_INO_LBLK_32 file of 8 blocks has blocks
// 0-3 at ua LBA 1000 and blocks 4-7 at ea byte 500*4096 (fs byte 64 MiB + 500*4096; CQHCI LBA
// 4000). An IV_INO_LBLK_64 file (8-byte DUNs, which the eMMC cannot take) has block 0 on ua and
// block 1 on ea: blk-crypto decides per device, so it is native on ufs0 (its key programmed there)
// and uses blk-crypto-fallback on emmc0 (an ordinary write of ciphertext).
constexpr std::uint64_t kMiB = 1024 * 1024;

struct F2fsRun {
    bool emmc_dun_shift = false;   ///< the eMMC half carries DUNs shifted by one unit
    bool miss_evict_emmc = false;  ///< key removal leaves the key in the eMMC's slot
    bool emmc_no_write = false;    ///< the eMMC never receives the blocks FIEMAP puts there
    bool ce_on_fallback = false;   ///< emmc0 transforms its block of the IV_INO_LBLK_64 file
    bool plain_lblk64_ufs = false; ///< ufs0 gets its block of the IV_INO_LBLK_64 file as CE=0
    bool no_sizes = false;         ///< disk_map without size_bytes: no layout

    Fixture build() const {
        Fixture f;
        f.replace_ufs1_with_emmc("64M");
        f.scenario["controllers"][0]["lus"][0]["size"] = "64M";
        if (!no_sizes) {
            f.run["disk_map"]["ua"]["size_bytes"] = 64 * kMiB;
            f.run["disk_map"]["ea"]["size_bytes"] = 64 * kMiB;
        }

        f.step("mkfs", {{"dev", "/dev/sdb"},
                        {"fstype", "f2fs"},
                        {"uuid", kUuid},
                        {"devices", json::array({"/dev/mmcblk0"})}});
        f.step(
            "mount",
            {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"fstype", "f2fs"}, {"options", "inlinecrypt"}},
            {{"block_size", 4096}});
        const std::string id = f.identifier();
        f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
        f.step("set_policy", {{"dir", "/mnt/d64"}, {"identifier", id}, {"flags", "iv_ino_lblk_64"}},
               {{"policy", {{"flags", 0x0b}, {"contents", 1}, {"log2_data_unit_size", 0}}}});
        f.step("set_policy", {{"dir", "/mnt/d32"}, {"identifier", id}, {"flags", "iv_ino_lblk_32"}},
               {{"policy", {{"flags", 0x13}, {"contents", 1}, {"log2_data_unit_size", 0}}}});

        // IV_INO_LBLK_64: native on ufs0, blk-crypto-fallback on emmc0 (32-bit DUNs)
        if (plain_lblk64_ufs) {
            f.io("ufs0", ev::IoOp::write, 2000, 1, false);
        } else {
            f.program("ufs0", 1, lblk64_fp());
            f.io("ufs0", ev::IoOp::write, 2000, 1, true, 1, kIno64 << 32);
        }
        if (ce_on_fallback) {
            f.program("emmc0", 1, lblk64_fp());
            EmmcDmRun::emmc_io(f, ev::IoOp::write, 300 * 8, 8, true, 1, kIno64 << 32 | 1,
                               lblk64_fp());
        } else {
            EmmcDmRun::emmc_io(f, ev::IoOp::write, 300 * 8, 8, false);
        }
        f.step("write_file", {{"path", "/mnt/d64/a"}, {"size", 8192}, {"seed", 1}},
               {{"ino", kIno64}, {"size", 8192}});
        f.step("file_info", {{"path", "/mnt/d64/a"}},
               {{"ino", kIno64},
                {"size", 8192},
                {"nonce", "101112131415161718191a1b1c1d1e1f"},
                {"extents",
                 {{{"logical", 0}, {"physical", 2000 * 4096}, {"length", 4096}, {"flags", 0}},
                  {{"logical", 4096},
                   {"physical", 64 * kMiB + 300 * 4096},
                   {"length", 4096},
                   {"flags", 1}}}}});

        // IV_INO_LBLK_32: native on both devices, the same key on both
        const std::string fp = icemu::models::key_fingerprint(EmmcDmRun::key32());
        f.program("ufs0", 0, fp);
        f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, EmmcDmRun::dun32(0));
        if (!emmc_no_write) {
            f.program("emmc0", 0, fp);
            EmmcDmRun::emmc_io(f, ev::IoOp::write, 500 * 8, 32, true, 0,
                               EmmcDmRun::dun32(4) + (emmc_dun_shift ? 1 : 0), fp);
        }
        f.step("write_file", {{"path", "/mnt/d32/big"}, {"size", 32768}, {"seed", 7}},
               {{"ino", kIno32}, {"size", 32768}});
        f.step("file_info", {{"path", "/mnt/d32/big"}},
               {{"ino", kIno32},
                {"size", 32768},
                {"nonce", "000102030405060708090a0b0c0d0e0f"},
                {"extents",
                 {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 0}},
                  {{"logical", 16384},
                   {"physical", 64 * kMiB + 500 * 4096},
                   {"length", 16384},
                   {"flags", 1}}}}});
        f.evict("ufs0", 0);
        if (!plain_lblk64_ufs) {
            f.evict("ufs0", 1);
        }
        if (ce_on_fallback) {
            f.evict("emmc0", 1);
        }
        if (!miss_evict_emmc && !emmc_no_write) {
            f.evict("emmc0", 0);
        }
        f.remove_key(id, "rm");
        return f;
    }
};

} // namespace

TEST_CASE("multi-device F2FS over a UFS LU and an eMMC: extents placed by the f2fs layout, keys "
          "on and evicted from both",
          "[checker][f2fs]") {
    const auto v = check(F2fsRun{}.build().inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 1).level == "model");
    // the first and last unit of each CE I/O: both halves of the IV_INO_LBLK_32 file (4) and
    // the IV_INO_LBLK_64 file's native block on ufs0 (2)
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("6 data unit(s)"));
    CHECK(verdict(v, 3).status == Status::pass);
    const std::string d3 = all_details(verdict(v, 3));
    CHECK_THAT(d3, ContainsSubstring("/mnt/d64/a (native on ufs0, fallback on emmc0"));
    CHECK_THAT(d3, ContainsSubstring("/mnt/d32/big (native"));
    CHECK_THAT(d3, ContainsSubstring("emmc0 16384 B"));
    CHECK_THAT(d3, ContainsSubstring("ufs0 16384 B"));
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK(verdict(v, 7).status == Status::pass);
}

TEST_CASE("multi-device F2FS: each device judged (DUN, fan-out, eviction, the every-device "
          "fallback decision)",
          "[checker][f2fs][negative]") {
    {
        F2fsRun r;
        r.emmc_dun_shift = true;
        fails(check(r.build().inputs()), 2, {"emmc0 seq", "+1 units"});
    }
    {
        F2fsRun r;
        r.miss_evict_emmc = true;
        fails(check(r.build().inputs()), 4, {"emmc0 slot 0 still holds"}, {"ufs0 slot"});
    }
    {
        F2fsRun r;
        r.emmc_no_write = true;
        fails(check(r.build().inputs()), 3,
              {"emmc0 holds 16384 bytes of /mnt/d32/big but received no write"});
    }
    {
        // The eMMC cannot take 64-bit DUNs: its part of the file must not reach its engine.
        F2fsRun r;
        r.ce_on_fallback = true;
        fails(check(r.build().inputs()), 7,
              {"emmc0 seq", "inside /mnt/d64/a (IV_INO_LBLK_64 policy): the models predict "
                            "blk-crypto-fallback"},
              {"ufs0 seq"});
    }
    {
        // ...while the UFS LU can: blk-crypto uses its engine for the part stored there.
        F2fsRun r;
        r.plain_lblk64_ufs = true;
        fails(check(r.build().inputs()), 7,
              {"ufs0 seq", "CE=0 write of 4096 bytes inside /mnt/d64/a"}, {"emmc0 seq"});
    }
}

TEST_CASE("multi-device F2FS without device sizes: extents are not placed, and the checker "
          "says so",
          "[checker][f2fs]") {
    F2fsRun r;
    r.no_sizes = true;
    const auto v = check(r.build().inputs());
    INFO(format_text(v));
    // nothing is mapped, so nothing can be judged at model level for the files' pieces
    CHECK_THAT(verdict(v, 2).reason, !ContainsSubstring("6 data unit(s)"));
    CHECK_THAT(verdict(v, 2).reason, !ContainsSubstring("4 data unit(s)"));
}

namespace {

// ext4 on ufs0 (ua) with a policy whose contents mode the engine does not offer (AES-128-CBC-
// ESSIV, Adiantum): blk-crypto-fallback, so ordinary writes of ciphertext; and an AES-256-XTS
// + AES-256-HCTR2 policy, whose contents are native (HCTR2 is a filenames mode).
struct ModesRun {
    unsigned contents = 5, filenames = 6;
    bool ce = false; ///< the controller transforms the file (it must not)

    Fixture build() const {
        Fixture f;
        f.step("mkfs", {{"dev", "/dev/sdb"}, {"uuid", kUuid}});
        f.step("mount", {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}},
               {{"block_size", 4096}});
        const std::string id = f.identifier();
        f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
        f.step("set_policy", {{"dir", "/mnt/m"}, {"identifier", id}},
               {{"policy",
                 {{"flags", 0x03},
                  {"contents", contents},
                  {"filenames", filenames},
                  {"log2_data_unit_size", 0}}}});
        if (ce) {
            f.program("ufs0", 0, "0123456789abcdef");
            f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, 0);
        } else {
            f.io("ufs0", ev::IoOp::write, 1000, 4, false);
        }
        f.step("write_file", {{"path", "/mnt/m/f"}, {"size", 16384}, {"seed", 7}},
               {{"ino", kIno}, {"size", 16384}});
        f.step("file_info", {{"path", "/mnt/m/f"}},
               {{"ino", kIno},
                {"size", 16384},
                {"nonce", "000102030405060708090a0b0c0d0e0f"},
                {"extents",
                 {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 1}}}}});
        if (ce) {
            f.evict("ufs0", 0);
        }
        f.remove_key(id, "rm");
        return f;
    }
};

} // namespace

TEST_CASE("contents modes the engine does not offer are predicted to use blk-crypto-fallback",
          "[checker][modes]") {
    for (unsigned mode : {5u, 9u}) {
        ModesRun r;
        r.contents = mode;
        r.filenames = mode == 5 ? 6 : 9;
        Images img;
        Inputs in = r.build().inputs();
        in.images["ua"] = img.write("ua", 1000 * 4096, 0, 16384, true); // not the plaintext
        const auto v = check(in);
        INFO(format_text(v));
        CHECK_FALSE(any_failed(v));
        const std::string d7 = all_details(verdict(v, 7));
        CHECK_THAT(verdict(v, 7).reason, ContainsSubstring("4 data unit(s) of unmodelled"));
        CHECK_THAT(d7, ContainsSubstring(mode == 5 ? "AES-128-CBC-ESSIV is not modelled"
                                                   : "Adiantum is not modelled"));
        CHECK_THAT(d7, ContainsSubstring("none holds the plaintext"));
    }
}

TEST_CASE("a CBC-ESSIV or Adiantum file the engine transformed, or stored as plaintext, fails "
          "invariant 7",
          "[checker][modes][negative]") {
    for (unsigned mode : {5u, 9u}) {
        ModesRun r;
        r.contents = mode;
        r.ce = true;
        fails(check(r.build().inputs()), 7, {"ufs0 seq", "the models predict blk-crypto-fallback"});
    }
    {
        ModesRun r;
        Images img;
        Inputs in = r.build().inputs();
        in.images["ua"] = img.write("ua", 1000 * 4096, 0, 16384, false);
        fails(check(in), 7, {"/mnt/m/f", "4 of 4 data unit(s) on the medium hold the PLAINTEXT"});
    }
}

TEST_CASE("AES-256-XTS contents with AES-256-HCTR2 filenames stay native and modelled",
          "[checker][modes]") {
    ModesRun r;
    r.contents = 1;
    r.filenames = 10;
    const auto v = check(r.build().inputs());
    // the CE=0 write is now a finding: XTS contents are native on ufs0
    fails(v, 7, {"CE=0 write", "/mnt/m/f", "native inline crypto expected"});
}

// ---- dm over dm (scenario 33) -------------------------------------------------------------------

namespace {

// dm-linear 'top' over dm-linear 'lin' (ua 16 MiB + ub 48 MiB): top maps lin's ub half first
// and its ua half second. An IV_INO_LBLK_64 file: blocks 0-3 at top byte 500*4096 (-> lin
// byte 16 MiB + 500*4096 -> ub LBA 500), blocks 4-7 at top byte 48 MiB + 1000*4096 (-> lin byte
// 1000*4096 -> ua LBA 1000).
Fixture stacked_run(bool top_dun_shift, bool miss_evict_ua) {
    Fixture f;
    f.dm_linear({{"/dev/sdb", kUaSectors}, {"/dev/sdc", kUbSectors}});
    f.step("dm_create", {{"name", "top"}}, {{"sysname", "dm-1"}, {"dev", "254:1"}});
    f.step("dm_load", {{"name", "top"},
                       {"table",
                        {{{"start", 0},
                          {"len", kUbSectors},
                          {"type", "linear"},
                          {"params", "/dev/mapper/lin " + std::to_string(kUaSectors)}},
                         {{"start", kUbSectors},
                          {"len", kUaSectors},
                          {"type", "linear"},
                          {"params", "/dev/mapper/lin 0"}}}}});
    f.step("dm_resume", {{"name", "top"}});
    json crypto = {
        {"max_dun_bits", 64}, {"num_keyslots", 0}, {"modes", {{"AES-256-XTS", "0x1200"}}}};
    f.step("disks", json::object(),
           {{"disks",
             {Fixture::lu_disk("sdb", 8, "0x1e00"),
              Fixture::lu_disk("sdc", 4, "0x1200"),
              {{"name", "dm-0"}, {"dm_name", "lin"}, {"crypto", crypto}},
              {{"name", "dm-1"}, {"dm_name", "top"}, {"crypto", crypto}}}}});
    const std::string id = f.identifier();
    f.step("mkfs", {{"dev", "/dev/mapper/top"}, {"uuid", kUuid}});
    f.step("mount", {{"dev", "/dev/mapper/top"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}});
    f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
    f.step("set_policy", {{"dir", "/mnt/d64"}, {"identifier", id}, {"flags", "iv_ino_lblk_64"}},
           {{"policy", {{"flags", 0x0b}, {"log2_data_unit_size", 0}}}});
    const std::string fp = lblk64_fp();
    f.program("ufs1", 0, fp);
    // a DUN shifted by the top table's offset into lin (in 4096-byte units) is wrong
    f.io("ufs1", ev::IoOp::write, 500, 4, true, 0,
         dun64(0) + (top_dun_shift ? kUaSectors * 512 / 4096 : 0));
    f.program("ufs0", 0, fp);
    f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, dun64(4));
    f.step("write_file", {{"path", "/mnt/d64/f"}, {"size", 32768}, {"seed", 7}},
           {{"ino", kIno}, {"size", 32768}});
    f.step("file_info", {{"path", "/mnt/d64/f"}},
           {{"ino", kIno},
            {"size", 32768},
            {"nonce", "000102030405060708090a0b0c0d0e0f"},
            {"extents",
             {{{"logical", 0}, {"physical", 500 * 4096}, {"length", 16384}, {"flags", 0}},
              {{"logical", 16384},
               {"physical", kUbSectors * 512 + 1000 * 4096},
               {"length", 16384},
               {"flags", 1}}}}});
    if (!miss_evict_ua) {
        f.evict("ufs0", 0);
    }
    f.evict("ufs1", 0);
    f.remove_key(id, "rm");
    f.step("dm_remove", {{"name", "top"}});
    f.step("dm_remove", {{"name", "lin"}});
    return f;
}

} // namespace

TEST_CASE("dm-linear over dm-linear: extents mapped through both tables, sysfs of both, keys on "
          "and evicted from both controllers",
          "[checker][stacked]") {
    const auto v = check(stacked_run(false, false).inputs());
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 1).level == "model");
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("4 data unit(s)"));
    CHECK(verdict(v, 5).status == Status::pass);
    const std::string d3 = all_details(verdict(v, 3));
    CHECK_THAT(d3, ContainsSubstring("ufs0 16384 B"));
    CHECK_THAT(d3, ContainsSubstring("ufs1 16384 B"));
}

TEST_CASE("dm over dm: a DUN shifted by the upper table's offset, a key left under the lower "
          "table",
          "[checker][stacked][negative]") {
    fails(check(stacked_run(true, false).inputs()), 2, {"ufs1 seq", "+4096 units"});
    fails(check(stacked_run(false, true).inputs()), 4, {"ufs0 slot 0 still holds"}, {"ufs1 slot"});
}

// ---- sub-block data units on an eMMC (scenario 34) ------------------------------------------

namespace {

// ext4 with 2^blkbits-byte blocks on an eMMC with a default policy of 2^log2_du-byte data units
// (0: the block size). The DUN width is fls64(s_maxbytes - 1) - log2_du with ext4's s_maxbytes
// (2^32 - 1) << blkbits: with 4096-byte blocks, 512-byte units need 35 bits, more than CQHCI's 32,
// so the file must use the fallback, and 4096-byte units (32 bits) are native; with 1024-byte
// blocks (scenario 34's eMMC), 1024-byte units need 32 bits (native) and 512-byte units 33.
Fixture emmc_subblock_run(unsigned log2_du, bool ce, unsigned blkbits = 12) {
    Fixture f;
    f.replace_ufs1_with_emmc("64M");
    const std::string id = f.identifier();
    const unsigned block = 1u << blkbits;
    f.step("mkfs", {{"dev", "/dev/mmcblk0"}, {"uuid", kUuid}, {"block_size", block}});
    f.step("mount", {{"dev", "/dev/mmcblk0"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}},
           {{"block_size", block}});
    f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
    f.step("set_policy", {{"dir", "/mnt/d"}, {"identifier", id}, {"log2_data_unit_size", log2_du}},
           {{"policy", {{"flags", 0x03}, {"contents", 1}, {"log2_data_unit_size", log2_du}}}});
    const Bytes key = fc::per_file_key(icemu::models::from_hex(kMaster),
                                       icemu::models::from_hex("000102030405060708090a0b0c0d0e0f"));
    const std::string fp = icemu::models::key_fingerprint(key);
    const unsigned dusize = 1u << (log2_du != 0 ? log2_du : blkbits);
    if (ce) {
        f.program("emmc0", 0, fp, dusize);
        ev::Io x;
        x.slot = 0;
        x.ce = true;
        x.op = ev::IoOp::write;
        x.opcode = 47;
        x.lba = 8000;
        x.blocks = 8;
        x.bytes = 4096;
        x.block_size = 512;
        x.dusize = dusize;
        x.dun = 0;
        x.key_fp = fp;
        x.queue = "cq:1";
        f.emit("emmc0", x);
    }
    f.step("write_file", {{"path", "/mnt/d/f"}, {"size", 4096}, {"seed", 7}},
           {{"ino", kIno}, {"size", 4096}});
    f.step("file_info", {{"path", "/mnt/d/f"}},
           {{"ino", kIno},
            {"size", 4096},
            {"nonce", "000102030405060708090a0b0c0d0e0f"},
            {"extents",
             {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 4096}, {"flags", 1}}}}});
    if (ce) {
        f.evict("emmc0", 0);
    }
    f.remove_key(id, "rm", false);
    return f;
}

} // namespace

TEST_CASE("sub-block data units on an eMMC: 512-byte units need 35-bit DUNs (fallback), "
          "4096-byte units are native",
          "[checker][emmc][subblock]") {
    {
        const auto v = check(emmc_subblock_run(12, true).inputs());
        INFO(format_text(v));
        CHECK_FALSE(any_failed(v));
        CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("data unit(s) checked"));
    }
    fails(check(emmc_subblock_run(9, true).inputs()), 7,
          {"emmc0 seq", "/mnt/d/f", "the models predict blk-crypto-fallback"});
}

TEST_CASE("ext4 with 1024-byte blocks on an eMMC: its 1024-byte units fit 32-bit DUNs (native), "
          "512-byte units need 33 bits (fallback)",
          "[checker][emmc][subblock]") {
    {
        const auto v = check(emmc_subblock_run(0, true, 10).inputs());
        INFO(format_text(v));
        CHECK_FALSE(any_failed(v));
        CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("data unit(s) checked"));
    }
    const auto v = check(emmc_subblock_run(9, true, 10).inputs());
    fails(v, 7, {"emmc0 seq", "/mnt/d/f", "the models predict blk-crypto-fallback"});
    CHECK(verdict(v, 0).status == Status::pass);
}

// ---- v1 policies and the IV_INO_LBLK_32 DUN wrap (scenario 35) ----------------------------------

namespace {

constexpr const char* kV1Desc = "0123456789abcdef";
constexpr const char* kNonce = "000102030405060708090a0b0c0d0e0f";

// Writes the model's encryption (under `key`, DUN of file offset o = dun(o)) of seed 7's pattern
// for file bytes [file_off, file_off + len) at byte dev_off of image `name` in `dir`.
template <typename DunFn>
std::string write_image(const std::filesystem::path& dir, const std::string& name,
                        std::uint64_t dev_off, std::uint64_t file_off, std::uint64_t len,
                        const Bytes& key, DunFn dun) {
    const std::string path = (dir / (name + ".img")).string();
    std::ofstream f(path, std::ios::binary);
    Bytes pt(4096), ct(4096);
    icemu::models::XtsCipher c(key);
    for (std::uint64_t o = 0; o < len; o += 4096) {
        icemu::pattern::fill(7, file_off + o, pt.data(), pt.size());
        c.encrypt(dun(file_off + o), 4096, pt, ct);
        f.seekp(static_cast<std::streamoff>(dev_off + o));
        f.write(reinterpret_cast<const char*>(ct.data()), 4096);
    }
    return path;
}

// ext4 on ufs0 (ua), a v1 policy (descriptor kV1Desc, AES-256-XTS/AES-256-CTS) and its key
// added by descriptor; one 4-block file at ua LBA 1000 written natively with the key in
// `program_key` (the v1 KDF's unless a test says otherwise).
struct V1Run {
    bool v2_kdf_key = false; ///< the engine got the v2 HKDF per-file key instead (wrong)
    bool miss_evict = false;

    Bytes key() const {
        const Bytes m = icemu::models::from_hex(kMaster), n = icemu::models::from_hex(kNonce);
        return v2_kdf_key ? fc::per_file_key(m, n) : fc::v1_per_file_key(m, n);
    }
    Fixture build() const {
        Fixture f;
        f.step("mkfs", {{"dev", "/dev/sdb"}, {"uuid", kUuid}});
        f.step("mount", {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}},
               {{"block_size", 4096}});
        f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}, {"descriptor", kV1Desc}},
               {{"descriptor", kV1Desc}});
        f.step("set_policy", {{"dir", "/mnt/v1"}, {"version", 1}, {"descriptor", kV1Desc}},
               {{"policy",
                 {{"version", 1},
                  {"flags", 0x03},
                  {"contents", 1},
                  {"filenames", 4},
                  {"descriptor", kV1Desc}}}});
        f.program("ufs0", 0, icemu::models::key_fingerprint(key()));
        f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, 0);
        f.step("write_file", {{"path", "/mnt/v1/f"}, {"size", 16384}, {"seed", 7}},
               {{"ino", kIno}, {"size", 16384}});
        f.step("file_info", {{"path", "/mnt/v1/f"}},
               {{"ino", kIno},
                {"size", 16384},
                {"nonce", kNonce},
                {"extents",
                 {{{"logical", 0}, {"physical", 1000 * 4096}, {"length", 16384}, {"flags", 1}}}}});
        if (!miss_evict) {
            f.evict("ufs0", 0);
        }
        f.step("remove_key", {{"mnt", "/mnt"}, {"descriptor", kV1Desc}}, {{"files_busy", false}},
               "rm");
        f.step("umount", {{"dir", "/mnt"}});
        return f;
    }
};

} // namespace

TEST_CASE("a v1 policy's file is judged with the v1 KDF's key: keys, DUNs, medium, eviction",
          "[checker][modes][v1]") {
    V1Run r;
    Images img;
    Inputs in = r.build().inputs();
    in.images["ua"] = write_image(img.dir, "ua", 1000 * 4096, 0, 16384, r.key(),
                                  [](std::uint64_t o) { return o / 4096; });
    const auto v = check(in);
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK(verdict(v, 1).level == "model");
    CHECK_THAT(verdict(v, 2).reason, ContainsSubstring("data unit(s) checked"));
    CHECK_THAT(verdict(v, 7).reason, ContainsSubstring("4 data unit(s) of 1 file(s) compared"));
    CHECK(verdict(v, 4).status == Status::pass);
    CHECK_THAT(all_details(verdict(v, 4)), ContainsSubstring("1 derived key(s)"));
}

TEST_CASE("v1: the v2 HKDF key on the engine fails invariant 1; a key left after removal by "
          "descriptor fails invariant 4",
          "[checker][modes][v1][negative]") {
    {
        V1Run r;
        r.v2_kdf_key = true;
        fails(check(r.build().inputs()), 1, {"/mnt/v1/f (v1", "the fscrypt model expects"});
    }
    {
        V1Run r;
        r.miss_evict = true;
        fails(check(r.build().inputs()), 4, {"still holds", "key of /mnt/v1/f"});
    }
}

namespace {

// ext4 on ufs0 (ua), an IV_INO_LBLK_32 file whose 4 blocks (one extent at ua LBA 1000) sit at
// the logical blocks where its DUN, hashed_ino + lblk, wraps: lblk L0 = 2^32 - hashed_ino - 2,
// so the DUNs are 0xfffffffe, 0xffffffff, 0, 1. Written as two requests split at the wrap (what
// fscrypt_mergeable_bio makes the kernel do) or as one request across it.
struct WrapRun {
    bool one_request = false;

    static std::uint32_t hashed() {
        return fc::hashed_ino(fc::inode_hash_key(icemu::models::from_hex(kMaster)), kIno);
    }
    static std::uint64_t l0() { return (std::uint64_t{1} << 32) - hashed() - 2; }
    static Bytes key() {
        return fc::iv_ino_lblk_32_key(icemu::models::from_hex(kMaster), uuid_bytes());
    }

    Fixture build() const {
        Fixture f;
        f.step("mkfs", {{"dev", "/dev/sdb"}, {"uuid", kUuid}});
        f.step("mount", {{"dev", "/dev/sdb"}, {"dir", "/mnt"}, {"options", "inlinecrypt"}},
               {{"block_size", 4096}});
        const std::string id = f.identifier();
        f.step("add_key", {{"mnt", "/mnt"}, {"key", kMaster}}, {{"identifier", id}});
        f.step("set_policy", {{"dir", "/mnt/w"}, {"identifier", id}, {"flags", "iv_ino_lblk_32"}},
               {{"policy", {{"flags", 0x13}, {"log2_data_unit_size", 0}}}});
        f.program("ufs0", 0, icemu::models::key_fingerprint(key()));
        if (one_request) {
            f.io("ufs0", ev::IoOp::write, 1000, 4, true, 0, 0xfffffffeull);
        } else {
            f.io("ufs0", ev::IoOp::write, 1000, 2, true, 0, 0xfffffffeull);
            f.io("ufs0", ev::IoOp::write, 1002, 2, true, 0, 0);
        }
        const std::uint64_t size = (l0() + 4) * 4096;
        f.step("write_file", {{"path", "/mnt/w/f"}, {"size", size}, {"seed", 7}},
               {{"ino", kIno}, {"size", size}});
        f.step("file_info", {{"path", "/mnt/w/f"}},
               {{"ino", kIno},
                {"size", size},
                {"nonce", kNonce},
                {"extents",
                 {{{"logical", l0() * 4096},
                   {"physical", 1000 * 4096},
                   {"length", 16384},
                   {"flags", 1}}}}});
        f.evict("ufs0", 0);
        f.remove_key(id, "rm");
        return f;
    }
};

} // namespace

TEST_CASE("IV_INO_LBLK_32: requests split at the 32-bit DUN wrap pass, with the medium on both "
          "sides",
          "[checker][lblk32]") {
    WrapRun r;
    Images img;
    Inputs in = r.build().inputs();
    const std::uint32_t h = WrapRun::hashed();
    in.images["ua"] =
        write_image(img.dir, "ua", 1000 * 4096, WrapRun::l0() * 4096, 16384, WrapRun::key(),
                    [h](std::uint64_t o) { return static_cast<std::uint32_t>(h + o / 4096); });
    const auto v = check(in);
    INFO(format_text(v));
    CHECK_FALSE(any_failed(v));
    CHECK_THAT(verdict(v, 2).reason,
               ContainsSubstring("2 IV_INO_LBLK_32 request(s) checked for crossing the 32-bit "
                                 "DUN wrap (1 ended at 0xffffffff, 1 started at 0)"));
    CHECK_THAT(verdict(v, 7).reason, ContainsSubstring("4 data unit(s) of 1 file(s) compared"));
}

TEST_CASE("IV_INO_LBLK_32: one request across the 32-bit DUN wrap fails invariant 2",
          "[checker][lblk32][negative]") {
    WrapRun r;
    r.one_request = true;
    fails(check(r.build().inputs()), 2,
          {"ufs0 seq", "/mnt/w/f (IV_INO_LBLK_32) request of 4 data units from DUN 0xfffffffe",
           "crosses the 32-bit DUN wrap"});
}
