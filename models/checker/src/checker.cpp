// icemu-check: the invariants of issue 4 over one scenario run. See checker.hpp.
//
// Pipeline: (1) walk run.json's steps in order, feeding the dm_passthrough model (dm_load /
// dm_resume / dm_clear / dm_remove) and collecting the guest's facts (mkfs UUID, mounts, master
// keys, policies, files with inode, nonce and FIEMAP extents); (2) turn every file with enough
// facts into a FileModel with the fscrypt model's key and DUN function and its extents mapped
// through the dm tables onto (controller, LUN, byte range); (3) replay each controller's event
// log through ufshci::LogReplay and keyslots::TrafficChecker, attributing every io to the files
// it touches; (4) judge each invariant from what was collected.
#include "icemu/checker/checker.hpp"

#include "icemu/models/fscrypt.hpp"
#include "icemu/models/keyslots.hpp"
#include "icemu/models/ufshci_crypto.hpp"
#include "icemu/models/xts.hpp"
#include "icemu/pattern.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace icemu::checker {

namespace {

namespace ev = models::events;
namespace fc = models::fscrypt;
namespace dm = models::dm;
namespace uc = models::ufshci;
namespace ks = models::keyslots;
using models::Bytes;

constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();

// ---- small helpers ----------------------------------------------------------------------------

const json& at(const json& j, const char* k) {
    static const json null;
    if (j.is_object()) {
        auto it = j.find(k);
        if (it != j.end()) {
            return *it;
        }
    }
    return null;
}

std::string str(const json& j, const char* k, std::string d = "") {
    if (j.is_object() && j.contains(k) && j[k].is_string()) {
        return j[k].get<std::string>();
    }
    return d;
}

std::uint64_t u64(const json& j, const char* k, std::uint64_t d = 0) {
    if (j.is_object() && j.contains(k)) {
        const json& v = j[k];
        if (v.is_number_unsigned() || v.is_number_integer()) {
            return v.get<std::uint64_t>();
        }
        if (v.is_string()) {
            try {
                return std::stoull(v.get<std::string>(), nullptr, 0);
            } catch (const std::exception&) {
                return d;
            }
        }
    }
    return d;
}

bool starts_under(const std::string& path, const std::string& dir) {
    if (dir.empty()) {
        return false;
    }
    const std::string d = dir.back() == '/' ? dir : dir + "/";
    return path.rfind(d, 0) == 0;
}

std::string hex_u64(std::uint64_t v) {
    std::ostringstream o;
    o << "0x" << std::hex << v;
    return o.str();
}

Bytes parse_uuid(const std::string& s) {
    std::string h;
    for (char c : s) {
        if (c != '-') {
            h.push_back(c);
        }
    }
    if (h.size() != 32) {
        return {};
    }
    try {
        return models::from_hex(h);
    } catch (const std::exception&) {
        return {};
    }
}

std::string short_fp(const std::string& fp) {
    return fp.empty() ? "(none)" : fp;
}

// ---- world: facts from the scenario and run.json ---------------------------------------------

struct Disk {
    std::string name; ///< scenario disk name
    std::string sys, dev_path, devnum;
    std::string ctrl; ///< "" for virtio
    unsigned lun = 0;
    bool crypto_ctrl = false; ///< the scenario says crypto: true
    std::string caps;         ///< scenario caps string ("" = device default)
    unsigned keyslots = 32;
    bool emmc = false; ///< sdhci-pci + CQHCI ("type": "emmc"): 32-bit DUNs, 512-byte blocks
};

struct Segment {
    std::uint64_t start = 0, len = 0; ///< sectors on the dm device
    std::string type;
    std::string dev;          ///< first device token
    std::uint64_t offset = 0; ///< sectors on `dev` (linear/flakey)
    /// striped: chunk size (sectors) and (device token, start sector) per stripe.
    std::uint64_t chunk = 0;
    std::vector<std::pair<std::string, std::uint64_t>> stripes;
    /// inlinecrypt (7.x drivers/md/dm-inlinecrypt.c inlinecrypt_ctr): `<cipher> <hex key>
    /// <iv_offset> <dev> <start> [<#opts> sector_size:N ...]`; `dev`/`offset` hold dev/start.
    Bytes ic_key;
    std::uint64_t ic_iv_offset = 0;
    unsigned ic_sector_bits = 9;
};

/// A range written with write_dev through a dm-inlinecrypt segment: a "file" whose key is the
/// table's key and whose DUN is dm-inlinecrypt's (iv_offset + sector in target) / (sector_size /
/// 512) (inlinecrypt_map). The pattern is addressed by the dm device's byte offset.
struct InlineRange {
    std::string dm; ///< dm device name
    Bytes key;
    std::uint64_t seg_start = 0; ///< sectors on the dm device
    std::uint64_t iv_offset = 0;
    unsigned sector_bits = 9;
};

struct IcRemoval {
    std::size_t step;
    std::string what;
    std::map<std::string, std::string> keys; ///< fp -> what
};

/// The device tokens a target's iterate_devices yields (7.3.4 / 6.12 drivers/md): linear,
/// flakey `<dev> <off> ...`; striped `<n> <chunk> (<dev> <off>){n}`; thin-pool `<meta> <data>
/// ...` (pool_iterate_devices: data only); thin `<pool> <id> [<origin>]` (thin_iterate_devices:
/// pool only); crypt, inlinecrypt `<cipher> <key> <iv_off> <dev> <start>`; delay `<dev> <off>
/// <ms> [<dev> <off> <ms> [<dev> <off> <ms>]]`. Other types: every token (a superset).
std::vector<std::string> target_device_tokens(const std::string& type,
                                              const std::vector<std::string>& toks) {
    std::vector<std::string> out;
    auto take = [&](std::size_t i) {
        if (i < toks.size()) {
            out.push_back(toks[i]);
        }
    };
    if (type == "linear" || type == "flakey" || type == "thin") {
        take(0);
    } else if (type == "thin-pool") {
        take(1);
    } else if (type == "crypt" || type == "inlinecrypt") {
        take(3);
    } else if (type == "delay") {
        take(0);
        take(3);
        take(6);
    } else if (type == "striped") {
        std::uint64_t n = 0;
        try {
            n = toks.empty() ? 0 : std::stoull(toks[0]);
        } catch (const std::exception&) {
            n = 0;
        }
        for (std::uint64_t k = 0; k < n; ++k) {
            take(2 + 2 * k);
        }
    } else {
        out = toks;
    }
    return out;
}

struct DmState {
    dm::DmDevice model;
    std::vector<Segment> live, inactive;
    std::string sysname, devnum;
    unsigned loads = 0;
    explicit DmState(dm::KernelVersion v) : model(v) {}
};

using SegMap = std::map<std::string, std::vector<Segment>>; // dm name -> live segments

struct Fs {
    std::string mnt, dev;
    Bytes uuid;
    unsigned blkbits = 12;
    bool inlinecrypt = false;
    std::size_t mount_step = 0, umount_step = kNever;
};

struct MasterKey {
    std::string mnt, identifier;
    Bytes key;
    std::size_t add_step = 0, remove_step = kNever;
};

struct Pol {
    std::string dir, identifier;
    unsigned flags = 0, log2_du = 0;
    std::size_t step = 0;
};

struct FileF {
    std::string path;
    std::uint64_t ino = 0, size = 0, seed = 0;
    bool have_ino = false, written = false, have_info = false;
    std::size_t write_step = 0, info_step = 0, end_step = kNever;
    std::optional<Bytes> nonce;
    json extents;
    SegMap segs; ///< dm tables live when the file was written (or inspected)
    std::optional<dm::Profile> dev_profile; ///< the fs device's profile at write time
    std::optional<InlineRange> ic;          ///< a write_dev range under dm-inlinecrypt
    std::string ic_dev;                     ///< its segment's underlying device token
    std::uint64_t ic_dev_off = 0;           ///< byte offset on ic_dev of the range's start
};

struct LoadCheck {
    std::size_t step;
    std::string label, name;
    int model_rc;
    bool reload;
    bool ok;
    std::string errno_name;
    std::string why;
};

struct SysfsCheck {
    std::size_t step;
    std::string disk, what;
    dm::SysfsCrypto want;
    json got;
};

struct RemovalCheck {
    std::size_t step;
    std::string what; ///< "step 13 remove_key /mnt ..."
    std::string mnt;
    std::vector<std::size_t> keys; ///< indices into mks_
    bool busy = false;
};

struct Piece {
    std::size_t file;
    std::string disk, ctrl;
    unsigned lun;
    std::uint64_t dev_off, len, file_off; ///< bytes on the LU, bytes in the file
};

struct FileModel {
    const FileF* f = nullptr;
    std::string path;
    bool encrypted = false;   ///< under a policy
    bool predictable = false; ///< key and DUN known from the fscrypt model
    std::string why_not;      ///< when !predictable
    bool native = false;      ///< inline crypto on the hardware (else fallback / fs-layer)
    bool decided = false;     ///< `native` was predicted from a known device profile
    bool on_dm = false;
    fc::Policy policy = fc::Policy::v2_default;
    std::string policy_name;
    unsigned du_bits = 12, blkbits = 12;
    Bytes key;
    std::string key_fp;
    const MasterKey* mk = nullptr;
    std::uint32_t hashed = 0;
    std::size_t from = 0, to = kNever; ///< steps whose I/O belongs to this file
    std::size_t npieces = 0;
    std::map<std::string, std::uint64_t> bytes_on_ctrl;
    // filled by the replay
    std::map<std::string, std::uint64_t> ce_writes, plain_writes, any_writes;

    std::uint64_t dun_at(std::uint64_t file_off) const {
        if (f->ic) {
            const std::uint64_t sector_in_target = file_off / 512 - f->ic->seg_start;
            return (f->ic->iv_offset + sector_in_target) >> (f->ic->sector_bits - 9);
        }
        return fc::dun(policy, file_off >> du_bits, f->ino, hashed);
    }
};

// A bounded list of findings with an exact count.
struct Findings {
    std::vector<std::string> items;
    std::uint64_t count = 0;
    void add(std::string s) {
        ++count;
        if (items.size() < 200) {
            items.push_back(std::move(s));
        }
    }
};

// What the replay of one controller's log found.
struct CtrlResult {
    bool replayed = false;
    bool have_marks = false;
    Findings log_fails; // LogReplay + traffic policy findings
    Findings key_fails; // inv 1 consistency + model
    std::uint64_t ce_ok = 0, ce_model = 0, ce_keyset = 0, ce_consistency = 0;
    std::uint64_t dun_ino_checked = 0; ///< IV_INO_LBLK_64 DUNs whose inode field was checked
    Findings dun_fails;
    std::uint64_t dun_checked = 0;
    Findings plain_fails;
    Findings fallback_fails; ///< CE I/O inside a file the models send to blk-crypto-fallback
    Findings reset_fails;
    std::uint64_t wipes_with_keys = 0;
    Findings stale_fails; // duplicate_key findings
    Findings dm_key_fails;
    std::map<std::size_t, std::map<unsigned, std::string>> slots_at; // step -> slot -> fp
    std::map<std::string, std::uint64_t> first_program; // fp -> seq of first ok program
};

class Checker {
public:
    Checker(const Inputs& in, const Options& opt) : in_(in), opt_(opt) {}
    std::vector<Verdict> run();

private:
    // step walk
    void load_disks();
    void walk_steps();
    std::optional<std::string> resolve(const std::string& token) const; // -> disk or "dm:NAME"
    dm::DeviceProfiles device_profiles() const;
    dm::Profile lu_profile(const Disk& d) const;
    dm::Profile profile_of(const std::string& token) const;
    SegMap live_segs() const;
    /// Ends the live record of the file at `path` (rewritten or removed at `step`).
    void end_file(const std::string& path, std::size_t step);
    /// A record of the file at `path`, written at `write_step`: the live dm mapping and the
    /// crypto profile of the mounted filesystem that holds it.
    FileF new_file(const std::string& path, std::size_t write_step) const;
    /// Merges file_info facts (inode, nonce, extents) reported at `step` into `f`.
    static void take_info(FileF& f, const json& facts, std::size_t step);
    void map_range(const SegMap& segs, const std::string& token, std::uint64_t off,
                   std::uint64_t len, std::uint64_t file_off, std::size_t file,
                   std::vector<Piece>& out, int depth) const;
    // models
    void build_file_models();
    // replay
    void replay_all();
    void replay(const LogInput& log);
    void handle_io(const std::string& ctrl, CtrlResult& r, const ev::Event& e, const ev::Io& io,
                   std::size_t step, const models::ufshci::LogReplay& rp);
    std::vector<std::uint64_t> marks_of(const std::string& ctrl) const;
    // verdicts
    Verdict v0_logs();
    Verdict v1_keys();
    Verdict v2_dun();
    Verdict v3_dm_keys();
    Verdict v4_removal();
    Verdict v5_sysfs();
    Verdict v6_reload();
    Verdict v7_medium();
    Verdict v8_reset();

    void add(std::vector<std::string>& v, std::string s) const {
        if (v.size() < opt_.max_details) {
            v.push_back(std::move(s));
        } else if (v.size() == opt_.max_details) {
            v.push_back("... (more)");
        }
    }
    std::string step_name(std::size_t i) const;
    std::map<std::string, std::string> keys_for(std::size_t mk) const; ///< fp -> what

    const Inputs& in_;
    const Options& opt_;
    dm::KernelVersion kv_ = dm::KernelVersion::v7_3;
    std::vector<std::string> notes_;

    std::map<std::string, Disk> disks_; ///< scenario disk name -> disk
    std::map<std::string, DmState> dms_;
    std::map<std::string, std::pair<Bytes, unsigned>> mkfs_; ///< dev token -> uuid, blkbits
    std::vector<Fs> fss_;
    std::vector<MasterKey> mks_;
    std::vector<Pol> pols_;
    std::vector<FileF> files_;
    std::vector<LoadCheck> loads_;
    std::vector<SysfsCheck> sysfs_;
    std::vector<RemovalCheck> removals_;
    std::vector<IcRemoval> ic_removals_; ///< dm_remove of devices with dm-inlinecrypt keys
    std::vector<std::string> identifier_checks_, identifier_fails_;
    bool have_steps_ = false;

    std::vector<FileModel> fms_;
    /// Keys the models derive from the reported facts (fingerprint -> what), for I/O that no
    /// file's extents cover: IV_INO_LBLK_64/32 keys of every master key and fs UUID, per-file
    /// keys of files with a nonce.
    std::map<std::string, std::pair<std::string, fc::Policy>> derivable_;
    bool only_lblk_ = false;              ///< every policy is IV_INO_LBLK_*: no per-file keys
    std::set<std::uint64_t> lblk64_inos_; ///< inodes of files under IV_INO_LBLK_64 policies
    std::map<std::pair<std::string, unsigned>, std::vector<std::size_t>> pieces_by_lu_;
    std::vector<Piece> pieces_;

    std::map<std::string, CtrlResult> res_;
    std::set<std::size_t> checkpoints_;
    std::map<unsigned, const std::vector<std::size_t>*> lu_cache_; ///< per replayed controller
};

std::string Checker::step_name(std::size_t i) const {
    if (i == 0) {
        return "boot";
    }
    const json& steps = at(in_.run, "steps");
    if (i > steps.size()) {
        return "end";
    }
    const json& st = steps[i - 1];
    std::string s = "step " + std::to_string(i) + " " + str(st, "op");
    if (!str(st, "label").empty()) {
        s += " [" + str(st, "label") + "]";
    }
    return s;
}

void Checker::load_disks() {
    const json& sc = in_.scenario;
    const json& dmap = at(in_.run, "disk_map");
    auto fill = [&](Disk& d) {
        if (dmap.contains(d.name) && dmap[d.name].is_object()) {
            const json& g = dmap[d.name];
            d.sys = str(g, "name");
            d.dev_path = str(g, "dev_path", d.sys.empty() ? "" : "/dev/" + d.sys);
            d.devnum = str(g, "dev");
        }
    };
    if (sc.is_object()) {
        for (const auto& c : at(sc, "controllers")) {
            // an eMMC controller's one disk is named on the controller (runner scenario.cpp)
            const bool emmc = str(c, "type") == "emmc";
            const json lus =
                emmc ? json::array({{{"name", str(c, "name")}, {"lun", 0}}}) : at(c, "lus");
            for (const auto& lu : lus) {
                Disk d;
                d.name = str(lu, "name");
                d.ctrl = str(c, "id");
                d.emmc = emmc;
                d.lun = static_cast<unsigned>(u64(lu, "lun"));
                d.crypto_ctrl = c.value("crypto", true);
                d.caps = str(c, "caps");
                d.keyslots = static_cast<unsigned>(u64(c, "keyslots", 32));
                fill(d);
                disks_[d.name] = d;
            }
        }
        for (const auto& v : at(sc, "virtio_disks")) {
            Disk d;
            d.name = str(v, "name");
            fill(d);
            disks_[d.name] = d;
        }
    }
}

std::optional<std::string> Checker::resolve(const std::string& token) const {
    if (token.rfind("/dev/mapper/", 0) == 0) {
        const std::string n = token.substr(12);
        return "dm:" + n;
    }
    for (const auto& [name, d] : dms_) {
        if ((!d.sysname.empty() && (token == "/dev/" + d.sysname || token == d.sysname)) ||
            (!d.devnum.empty() && token == d.devnum)) {
            return "dm:" + name;
        }
    }
    for (const auto& [name, d] : disks_) {
        if (token == name || (!d.dev_path.empty() && token == d.dev_path) ||
            (!d.sys.empty() && token == d.sys) || (!d.devnum.empty() && token == d.devnum)) {
            return name;
        }
    }
    return std::nullopt;
}

namespace {
// CQHCI crypto has 32-bit DUNs (Linux cqhci_crypto_init: max_dun_bytes_supported = 4); the
// capability registers are UFSHCI's.
dm::CryptoCaps cqhci_dun(dm::CryptoCaps p, bool cqhci) {
    if (cqhci) {
        p.max_dun_bytes = 4;
    }
    return p;
}
} // namespace

dm::Profile Checker::lu_profile(const Disk& d) const {
    if (d.ctrl.empty() || !d.crypto_ctrl) {
        return std::nullopt;
    }
    auto it = in_.logs.find(d.ctrl);
    if (it != in_.logs.end() && !it->second.events.empty()) {
        if (const auto* r = std::get_if<ev::Realize>(&it->second.events.front().body)) {
            std::vector<uc::CryptoCap> caps;
            for (const auto& c : r->caps) {
                caps.push_back(uc::CryptoCap{static_cast<uc::AlgId>(c.algid),
                                             static_cast<std::uint8_t>(c.sdusb),
                                             static_cast<uc::KeySize>(c.ks)});
            }
            return cqhci_dun(dm::ufs_profile(caps, r->slots), d.emmc || r->frontend == "cqhci");
        }
    }
    if (in_.run.is_object() && !in_.run.value("engine", true)) {
        return std::nullopt; // QEMU without the engine: the controller has no crypto
    }
    try {
        return cqhci_dun(
            dm::ufs_profile(uc::parse_crypto_caps(d.caps.empty() ? "aes-xts-256:0x0f" : d.caps),
                            d.keyslots),
            d.emmc);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

dm::Profile Checker::profile_of(const std::string& token) const {
    auto r = resolve(token);
    if (!r) {
        return std::nullopt;
    }
    if (r->rfind("dm:", 0) == 0) {
        auto it = dms_.find(r->substr(3));
        return it == dms_.end() ? std::nullopt : it->second.model.queue_profile();
    }
    return lu_profile(disks_.at(*r));
}

dm::DeviceProfiles Checker::device_profiles() const {
    dm::DeviceProfiles p;
    for (const auto& [name, d] : disks_) {
        p[name] = lu_profile(d);
    }
    for (const auto& [name, d] : dms_) {
        p["dm:" + name] = d.model.queue_profile();
    }
    return p;
}

void Checker::end_file(const std::string& path, std::size_t step) {
    for (auto& f : files_) {
        if (f.path == path && f.end_step == kNever) {
            f.end_step = step;
        }
    }
}

FileF Checker::new_file(const std::string& path, std::size_t write_step) const {
    FileF f;
    f.path = path;
    f.write_step = write_step;
    f.segs = live_segs();
    for (const auto& fsys : fss_) {
        if (fsys.umount_step == kNever && starts_under(path, fsys.mnt)) {
            f.dev_profile = profile_of(fsys.dev);
        }
    }
    return f;
}

void Checker::take_info(FileF& f, const json& facts, std::size_t step) {
    f.have_info = true;
    f.info_step = step;
    if (facts.contains("ino")) {
        f.ino = u64(facts, "ino");
        f.have_ino = true;
    }
    if (facts.contains("nonce") && facts["nonce"].is_string()) {
        f.nonce = models::from_hex(facts["nonce"].get<std::string>());
    }
    f.extents = at(facts, "extents");
}

SegMap Checker::live_segs() const {
    SegMap m;
    for (const auto& [name, d] : dms_) {
        m[name] = d.live;
    }
    return m;
}

void Checker::map_range(const SegMap& segs, const std::string& token, std::uint64_t off,
                        std::uint64_t len, std::uint64_t file_off, std::size_t file,
                        std::vector<Piece>& out, int depth) const {
    auto r = resolve(token);
    if (!r || depth > 8 || len == 0) {
        return;
    }
    if (r->rfind("dm:", 0) != 0) {
        const Disk& d = disks_.at(*r);
        out.push_back(Piece{file, d.name, d.ctrl, d.lun, off, len, file_off});
        return;
    }
    auto it = segs.find(r->substr(3));
    if (it == segs.end()) {
        return;
    }
    for (const auto& s : it->second) {
        const std::uint64_t a = s.start * 512, b = (s.start + s.len) * 512;
        const std::uint64_t lo = std::max(off, a), hi = std::min(off + len, b);
        if (lo >= hi) {
            continue;
        }
        if (s.type == "striped" && s.chunk && !s.stripes.empty()) {
            // dm-stripe stripe_map_sector: chunk = x / chunk_size; stripe = chunk % n; the
            // device sector is stripe start + (chunk / n) * chunk_size + x % chunk_size.
            const std::uint64_t cb = s.chunk * 512, n = s.stripes.size();
            for (std::uint64_t x = lo - a; x < hi - a;) {
                const std::uint64_t chunk = x / cb, in = x % cb;
                const std::uint64_t piece = std::min(cb - in, hi - a - x);
                const auto& [dev, dstart] = s.stripes[chunk % n];
                map_range(segs, dev, dstart * 512 + (chunk / n) * cb + in, piece,
                          file_off + (a + x - off), file, out, depth + 1);
                x += piece;
            }
            continue;
        }
        if (s.type != "linear" && s.type != "flakey" && s.type != "delay") {
            continue;
        }
        map_range(segs, s.dev, lo - a + s.offset * 512, hi - lo, file_off + (lo - off), file, out,
                  depth + 1);
    }
}

void Checker::walk_steps() {
    const json& steps = at(in_.run, "steps");
    have_steps_ = !steps.empty();
    const json& boot = at(in_.run, "boot_disks");
    auto record_sysfs = [&](std::size_t i, const json& disks) {
        if (!disks.is_array()) {
            return;
        }
        for (const auto& d : disks) {
            const std::string dmn = str(d, "dm_name");
            if (!dmn.empty()) {
                auto it = dms_.find(dmn);
                if (it != dms_.end()) {
                    sysfs_.push_back(
                        {i, dmn, "dm device", it->second.model.sysfs(), at(d, "crypto")});
                }
                continue;
            }
            for (const auto& [name, disk] : disks_) {
                if (!disk.sys.empty() && disk.sys == str(d, "name") && !disk.ctrl.empty()) {
                    sysfs_.push_back(
                        {i, name,
                         disk.emmc ? "eMMC " + disk.ctrl
                                   : "UFS LU " + disk.ctrl + "/" + std::to_string(disk.lun),
                         dm::sysfs_view(lu_profile(disk), true, kv_), at(d, "crypto")});
                }
            }
        }
    };
    record_sysfs(0, at(boot, "disks"));
    for (std::size_t i = 1; i <= steps.size(); ++i) {
        const json& st = steps[i - 1];
        if (st.contains("skipped")) {
            continue; // not run on this kernel (the step's "kernel" condition)
        }
        const std::string op = str(st, "op");
        const json& rq = at(st, "request");
        const json& rp = at(st, "reply");
        const bool ok = rp.is_object() && rp.value("ok", false);
        const std::string label = str(st, "label");
        if (op == "dm_create" && ok) {
            auto [it, _] = dms_.insert_or_assign(str(rq, "name"), DmState(kv_));
            it->second.sysname = str(rp, "sysname");
            it->second.devnum = str(rp, "dev");
        } else if (op == "dm_load") {
            const std::string name = str(rq, "name");
            auto it = dms_.find(name);
            if (it == dms_.end()) {
                continue;
            }
            dm::Table t;
            std::vector<Segment> segs;
            std::string why;
            for (const auto& e : at(rq, "table")) {
                Segment s;
                s.start = u64(e, "start");
                s.len = u64(e, "len");
                s.type = str(e, "type");
                std::istringstream ps(str(e, "params"));
                std::vector<std::string> toks;
                for (std::string w; ps >> w;) {
                    toks.push_back(w);
                }
                dm::Target tg;
                tg.type = s.type;
                // delay with one device group maps reads and writes like linear
                if ((s.type == "linear" || s.type == "flakey" ||
                     (s.type == "delay" && toks.size() == 3)) &&
                    toks.size() >= 2) {
                    s.dev = toks[0];
                    try {
                        s.offset = std::stoull(toks[1]);
                    } catch (const std::exception&) {
                        s.dev.clear(); // not a linear "DEV OFFSET": not mapped
                    }
                } else if (s.type == "inlinecrypt" && toks.size() >= 5 && toks[1][0] != ':') {
                    try {
                        s.ic_key = models::from_hex(toks[1]);
                        s.ic_iv_offset = std::stoull(toks[2]);
                        s.dev = toks[3];
                        s.offset = std::stoull(toks[4]);
                        for (std::size_t k = 6; k < toks.size(); ++k) {
                            if (toks[k].rfind("sector_size:", 0) == 0) {
                                const unsigned long ss = std::stoul(toks[k].substr(12));
                                while ((1ul << s.ic_sector_bits) < ss && s.ic_sector_bits < 12) {
                                    ++s.ic_sector_bits;
                                }
                            }
                        }
                    } catch (const std::exception&) {
                        s.ic_key.clear(); // unparsable: not modelled
                        s.dev.clear();
                    }
                } else if (s.type == "striped" && toks.size() >= 4) {
                    try {
                        const std::uint64_t n = std::stoull(toks[0]);
                        s.chunk = std::stoull(toks[1]);
                        for (std::uint64_t k = 0; k < n && 3 + 2 * k < toks.size(); ++k) {
                            s.stripes.emplace_back(toks[2 + 2 * k], std::stoull(toks[3 + 2 * k]));
                        }
                        if (s.stripes.size() != n) {
                            s.stripes.clear();
                        }
                    } catch (const std::exception&) {
                        s.stripes.clear(); // not "<n> <chunk> (<dev> <off>){n}": not mapped
                    }
                }
                for (const auto& w : target_device_tokens(s.type, toks)) {
                    auto r = resolve(w);
                    if (r) {
                        tg.devices.push_back(*r);
                    }
                }
                t.targets.push_back(tg);
                segs.push_back(s);
            }
            const bool reload = it->second.loads > 0;
            int rc;
            try {
                rc = it->second.model.load(t, device_profiles());
            } catch (const std::exception& e) {
                rc = 0;
                why = std::string("model: ") + e.what();
            }
            ++it->second.loads;
            loads_.push_back({i, label, name, rc, reload, ok, str(rp, "errno_name"), why});
            if (ok) {
                it->second.inactive = segs;
            }
        } else if (op == "dm_resume" && ok) {
            auto it = dms_.find(str(rq, "name"));
            if (it != dms_.end()) {
                it->second.model.resume();
                if (!it->second.inactive.empty()) {
                    it->second.live = std::move(it->second.inactive);
                    it->second.inactive.clear();
                }
            }
        } else if (op == "dm_clear" && ok) {
            auto it = dms_.find(str(rq, "name"));
            if (it != dms_.end()) {
                it->second.model.clear();
                it->second.inactive.clear();
            }
        } else if (op == "dm_remove" && ok) {
            // inlinecrypt_dtr evicts the table's key from its underlying device (7.x)
            auto it = dms_.find(str(rq, "name"));
            if (it != dms_.end()) {
                IcRemoval rc{i, step_name(i) + " " + it->first, {}};
                for (const auto* segs : {&it->second.live, &it->second.inactive}) {
                    for (const auto& sg : *segs) {
                        if (sg.type == "inlinecrypt" && !sg.ic_key.empty()) {
                            rc.keys[models::key_fingerprint(sg.ic_key)] =
                                "dm-inlinecrypt key of " + it->first;
                        }
                    }
                }
                if (!rc.keys.empty()) {
                    ic_removals_.push_back(std::move(rc));
                }
            }
            dms_.erase(str(rq, "name"));
        } else if (op == "write_dev" && ok) {
            // A known-pattern write to a dm-inlinecrypt device: one modelled range per segment.
            const std::string dev = str(rq, "dev");
            const auto r = resolve(dev);
            const std::uint64_t off = u64(rq, "offset"), len = u64(rq, "size");
            if (r && r->rfind("dm:", 0) == 0) {
                auto it = dms_.find(r->substr(3));
                for (const auto& sg : it == dms_.end() ? std::vector<Segment>{} : it->second.live) {
                    const std::uint64_t a = sg.start * 512, b = (sg.start + sg.len) * 512;
                    const std::uint64_t lo = std::max(off, a), hi = std::min(off + len, b);
                    if (sg.type != "inlinecrypt" || sg.ic_key.empty() || lo >= hi) {
                        continue;
                    }
                    FileF f;
                    f.path = "write_dev " + dev + " [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + ")";
                    f.written = true;
                    f.have_info = true;
                    f.write_step = i;
                    f.seed = u64(rq, "seed");
                    f.size =
                        hi; // pattern offsets are device offsets; units below lo are not mapped
                    f.segs = live_segs();
                    f.ic = InlineRange{it->first, sg.ic_key, sg.start, sg.ic_iv_offset,
                                       sg.ic_sector_bits};
                    f.ic_dev = sg.dev;
                    f.ic_dev_off = sg.offset * 512 + (lo - a);
                    f.extents = json::array({{{"logical", lo}, {"length", hi - lo}}});
                    f.dev_profile = profile_of(sg.dev);
                    for (auto& old : files_) {
                        if (old.ic && old.path == f.path && old.end_step == kNever) {
                            old.end_step = i;
                        }
                    }
                    files_.push_back(std::move(f));
                }
            }
        } else if (op == "disks" && ok) {
            record_sysfs(i, at(rp, "disks"));
        } else if (op == "mkfs" && ok) {
            const unsigned bs = static_cast<unsigned>(u64(rq, "block_size", 4096));
            unsigned bits = 12;
            while ((1u << bits) < bs && bits < 16) {
                ++bits;
            }
            while ((1u << bits) > bs && bits > 9) {
                --bits;
            }
            mkfs_[str(rq, "dev")] = {parse_uuid(str(rq, "uuid")), bits};
        } else if (op == "mount" && ok) {
            Fs f;
            f.mnt = str(rq, "dir");
            f.dev = str(rq, "dev");
            f.mount_step = i;
            f.inlinecrypt = str(rq, "options").find("inlinecrypt") != std::string::npos;
            if (auto m = mkfs_.find(f.dev); m != mkfs_.end()) {
                f.uuid = m->second.first;
                f.blkbits = m->second.second;
            }
            // The mounted filesystem's block size as the guest reports it (statvfs) wins
            // over the one derived from the mkfs request.
            if (const std::uint64_t bs = u64(rp, "block_size", 0); bs >= 512 && bs <= 65536) {
                unsigned bits = 9;
                while ((1ull << bits) < bs) {
                    ++bits;
                }
                f.blkbits = bits;
            }
            fss_.push_back(f);
        } else if (op == "umount" && ok) {
            for (auto& f : fss_) {
                if (f.mnt == str(rq, "dir") && f.umount_step == kNever) {
                    f.umount_step = i;
                    RemovalCheck rc{i, step_name(i) + " " + f.mnt, f.mnt, {}, false};
                    for (std::size_t k = 0; k < mks_.size(); ++k) {
                        if (mks_[k].mnt == f.mnt && mks_[k].add_step >= f.mount_step) {
                            rc.keys.push_back(k);
                        }
                    }
                    removals_.push_back(rc);
                }
            }
        } else if (op == "add_key" && ok) {
            MasterKey mk;
            mk.mnt = str(rq, "mnt");
            mk.key = models::from_hex(str(rq, "key"));
            mk.identifier = str(rp, "identifier");
            mk.add_step = i;
            const std::string want = models::to_hex(fc::key_identifier(mk.key));
            if (mk.identifier != want) {
                identifier_fails_.push_back(step_name(i) + ": the kernel returned identifier " +
                                            mk.identifier + ", the model derives " + want);
            } else {
                identifier_checks_.push_back(step_name(i) + ": identifier " + want);
            }
            mks_.push_back(mk);
        } else if (op == "remove_key" && ok) {
            RemovalCheck rc{i, step_name(i) + " " + str(rq, "mnt"), str(rq, "mnt"), {}, false};
            rc.busy = rp.value("files_busy", false);
            for (std::size_t k = 0; k < mks_.size(); ++k) {
                MasterKey& mk = mks_[k];
                if (mk.mnt == rc.mnt && mk.identifier == str(rq, "identifier") &&
                    mk.remove_step == kNever) {
                    mk.remove_step = i;
                    rc.keys.push_back(k);
                }
            }
            removals_.push_back(rc);
        } else if (op == "set_policy" && ok) {
            Pol p;
            p.dir = str(rq, "dir");
            p.identifier = str(rq, "identifier");
            const json& pol = at(rp, "policy");
            p.flags = static_cast<unsigned>(u64(pol, "flags", 0));
            p.log2_du = static_cast<unsigned>(
                u64(pol, "log2_data_unit_size", u64(rq, "log2_data_unit_size", 0)));
            if (!pol.contains("flags")) {
                const std::string fl = str(rq, "flags", "none");
                p.flags = fl == "iv_ino_lblk_64"   ? 0x08
                          : fl == "iv_ino_lblk_32" ? 0x10
                          : fl == "direct_key"     ? 0x04
                                                   : 0;
            }
            p.step = i;
            pols_.push_back(p);
        } else if (op == "write_file" && ok) {
            const std::string path = str(rq, "path");
            end_file(path, i);
            FileF f = new_file(path, i);
            f.written = true;
            f.seed = u64(rq, "seed");
            f.size = u64(rp, "size", u64(rq, "size"));
            if (rp.contains("ino")) {
                f.ino = u64(rp, "ino");
                f.have_ino = true;
            }
            files_.push_back(std::move(f));
        } else if (op == "file_info" && ok) {
            const std::string path = str(rq, "path");
            FileF* f = nullptr;
            for (auto& x : files_) {
                if (x.path == path && x.end_step == kNever) {
                    f = &x;
                }
            }
            if (!f) {
                files_.push_back(new_file(path, 0));
                f = &files_.back();
            }
            take_info(*f, rp, i);
            if (!f->written) {
                f->size = u64(rp, "size");
            }
        } else if (op == "write_files" && ok) {
            // Several files written concurrently in one step; the reply carries each file's
            // file_info facts (inode, nonce, extents) taken after all of them were written.
            const json& facts = at(rp, "files");
            for (const auto& e : at(rq, "files")) {
                const std::string path = str(e, "path");
                end_file(path, i);
                FileF f = new_file(path, i);
                f.written = true;
                f.seed = u64(e, "seed");
                f.size = u64(e, "size");
                for (const auto& fi : facts) {
                    if (str(fi, "path") == path) {
                        take_info(f, fi, i);
                        f.size = u64(fi, "size", f.size);
                    }
                }
                files_.push_back(std::move(f));
            }
        } else if (op == "remove_file" && ok) {
            end_file(str(rq, "path"), i);
        }
    }
}

void Checker::build_file_models() {
    for (std::size_t fi = 0; fi < files_.size(); ++fi) {
        const FileF& f = files_[fi];
        (void)fi;
        FileModel m;
        m.f = &f;
        m.path = f.path;
        if (f.ic) {
            m.encrypted = true;
            m.predictable = true;
            m.key = f.ic->key;
            m.key_fp = models::key_fingerprint(m.key);
            m.policy_name = "dm-inlinecrypt " + f.ic->dm;
            m.du_bits = f.ic->sector_bits;
            m.from = f.write_step;
            m.to = f.end_step;
            m.on_dm = resolve(f.ic_dev).value_or("").rfind("dm:", 0) == 0;
            // blk_crypto_config_supported_natively: mode + data unit + DUN bytes of the device
            const std::uint64_t max_dun = f.ic->iv_offset + (f.size / 512 - f.ic->seg_start);
            unsigned dun_bytes = 1;
            while (dun_bytes < 8 && (max_dun >> (8 * dun_bytes)) != 0) {
                ++dun_bytes;
            }
            m.decided = f.dev_profile.has_value();
            if (f.dev_profile && f.dev_profile->has_value()) {
                const auto& caps = **f.dev_profile;
                m.native =
                    (caps.modes[1] & (1u << m.du_bits)) != 0 && caps.max_dun_bytes >= dun_bytes;
            }
            const std::uint64_t lo = u64(f.extents[0], "logical"),
                                len = u64(f.extents[0], "length");
            map_range(f.segs, f.ic_dev, f.ic_dev_off, len, lo, fms_.size(), pieces_, 0);
            derivable_.emplace(m.key_fp, std::pair{"the dm-inlinecrypt key of " + f.ic->dm,
                                                   fc::Policy::v2_default});
            fms_.push_back(std::move(m));
            continue;
        }
        const std::size_t when = f.written ? f.write_step : f.info_step;
        m.from = f.written ? f.write_step : 1;
        m.to = f.end_step;
        const Fs* fsys = nullptr;
        for (const auto& x : fss_) {
            if (x.mount_step <= when && x.umount_step > when && starts_under(f.path, x.mnt)) {
                fsys = &x;
            }
        }
        const Pol* pol = nullptr;
        for (const auto& p : pols_) {
            if (p.step <= when && (starts_under(f.path, p.dir) || f.path == p.dir) &&
                (!pol || p.dir.size() > pol->dir.size())) {
                pol = &p;
            }
        }
        m.encrypted = pol != nullptr;
        if (!fsys) {
            m.why_not = "no mounted filesystem holds it";
        } else if (!pol) {
            m.why_not = "not under an encryption policy";
        }
        if (fsys) {
            m.blkbits = fsys->blkbits;
            m.on_dm = resolve(fsys->dev).value_or("").rfind("dm:", 0) == 0;
        }
        if (fsys && pol) {
            m.du_bits = pol->log2_du ? pol->log2_du : fsys->blkbits;
            if (pol->flags & 0x08) {
                m.policy = fc::Policy::iv_ino_lblk_64;
                m.policy_name = "IV_INO_LBLK_64";
            } else if (pol->flags & 0x10) {
                m.policy = fc::Policy::iv_ino_lblk_32;
                m.policy_name = "IV_INO_LBLK_32";
            } else {
                m.policy_name = "default (per-file key)";
            }
            for (const auto& mk : mks_) {
                if (mk.mnt == fsys->mnt && mk.identifier == pol->identifier &&
                    mk.add_step <= when && mk.remove_step > when) {
                    m.mk = &mk;
                }
            }
            if (pol->flags & 0x04) {
                m.why_not = "DIRECT_KEY policies are not modelled";
            } else if (!m.mk) {
                m.why_not = "the master key was not added by a reported step";
            } else if (!f.have_ino) {
                m.why_not = "no inode number reported";
            } else if (m.policy == fc::Policy::v2_default && !f.nonce) {
                m.why_not = f.have_info ? "file_info reported no nonce"
                                        : "no file_info step (nonce, extents)";
            } else if (m.policy != fc::Policy::v2_default && fsys->uuid.size() != 16) {
                m.why_not = "no filesystem UUID reported (mkfs uuid)";
            } else {
                fc::FileParams fp;
                fp.policy = m.policy;
                fp.master_key = m.mk->key;
                if (fsys->uuid.size() == 16) {
                    std::copy(fsys->uuid.begin(), fsys->uuid.end(), fp.fs_uuid.begin());
                }
                if (f.nonce && f.nonce->size() == 16) {
                    std::copy(f.nonce->begin(), f.nonce->end(), fp.nonce.begin());
                }
                fp.ino = f.ino;
                fp.blkbits = fsys->blkbits;
                fp.du_bits = m.du_bits;
                try {
                    m.key = fc::expected_for_block(fp, 0).key;
                    m.key_fp = models::key_fingerprint(m.key);
                    if (m.policy == fc::Policy::iv_ino_lblk_32) {
                        m.hashed = fc::hashed_ino(fc::inode_hash_key(m.mk->key), f.ino);
                    }
                    m.predictable = true;
                } catch (const std::exception& e) {
                    m.why_not = std::string("fscrypt model: ") + e.what();
                }
            }
            // Native inline crypto (fscrypt_select_encryption_impl + blk_crypto_config_supported).
            const std::uint64_t s_maxbytes = ((1ull << 32) - 1) << fsys->blkbits;
            const unsigned need = fc::dun_bytes(m.policy, s_maxbytes, m.du_bits);
            const bool lblk32_ok = m.policy != fc::Policy::iv_ino_lblk_32 || fsys->blkbits == 12;
            bool supported = false;
            if (f.dev_profile && f.dev_profile->has_value()) {
                const auto& caps = **f.dev_profile;
                supported = (caps.modes[1] & (1u << m.du_bits)) != 0 && caps.max_dun_bytes >= need;
            }
            m.native = fsys->inlinecrypt && lblk32_ok && supported;
            m.decided = f.dev_profile.has_value();
        }
        if (f.have_info && f.extents.is_array() && fsys) {
            for (const auto& e : f.extents) {
                const std::uint64_t flags = u64(e, "flags");
                if (flags & 0x6) { // FIEMAP_EXTENT_UNKNOWN | DELALLOC: no physical location yet
                    continue;
                }
                map_range(f.segs, fsys->dev, u64(e, "physical"), u64(e, "length"),
                          u64(e, "logical"), fms_.size(), pieces_, 0);
            }
        }
        fms_.push_back(std::move(m));
    }
    only_lblk_ = !pols_.empty();
    for (const auto& p : pols_) {
        only_lblk_ = only_lblk_ && (p.flags & 0x18) != 0;
    }
    for (const auto& mk : mks_) {
        for (const auto& fsys : fss_) {
            if (fsys.mnt != mk.mnt || fsys.uuid.size() != 16) {
                continue;
            }
            const std::string id = mk.identifier.substr(0, 8);
            derivable_.emplace(models::key_fingerprint(fc::iv_ino_lblk_64_key(mk.key, fsys.uuid)),
                               std::pair{"the IV_INO_LBLK_64 key of master key " + id,
                                         fc::Policy::iv_ino_lblk_64});
            derivable_.emplace(models::key_fingerprint(fc::iv_ino_lblk_32_key(mk.key, fsys.uuid)),
                               std::pair{"the IV_INO_LBLK_32 key of master key " + id,
                                         fc::Policy::iv_ino_lblk_32});
        }
    }
    for (const auto& fm : fms_) {
        if (fm.predictable) {
            derivable_.emplace(fm.key_fp, std::pair{"the key of " + fm.path, fm.policy});
        }
        if (fm.encrypted && fm.policy == fc::Policy::iv_ino_lblk_64 && fm.f->have_ino) {
            lblk64_inos_.insert(fm.f->ino);
        }
    }
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
        const Piece& p = pieces_[i];
        fms_[p.file].bytes_on_ctrl[p.ctrl.empty() ? p.disk : p.ctrl] += p.len;
        ++fms_[p.file].npieces;
        if (!p.ctrl.empty()) {
            pieces_by_lu_[{p.ctrl, p.lun}].push_back(i);
        }
    }
}

// ---- replay ----------------------------------------------------------------------------------

std::vector<std::uint64_t> Checker::marks_of(const std::string& ctrl) const {
    std::vector<std::uint64_t> marks;
    for (const auto& sn : at(in_.run, "snapshots")) {
        const json& b = at(sn, "event_log_bytes");
        if (!b.is_object() || !b.contains(ctrl)) {
            return {};
        }
        marks.push_back(b[ctrl].get<std::uint64_t>());
    }
    return marks;
}

void Checker::handle_io(const std::string& ctrl, CtrlResult& r, const ev::Event& e,
                        const ev::Io& io, std::size_t step, const uc::LogReplay& rp) {
    const bool good = io.ocs == 0 && io.error.empty();
    // Built only when a finding needs it (this is the replay's hot path).
    auto where = [&] {
        return ctrl + " seq " + std::to_string(e.seq) + " (" + step_name(step) + ") " +
               std::string(ev::to_string(io.op)) + " lun " + std::to_string(io.lun) + " lba " +
               std::to_string(io.lba) + "+" + std::to_string(io.blocks);
    };
    if (io.ce && good && io.slot >= 0) {
        ++r.ce_ok;
        const auto& v = rp.slot(static_cast<unsigned>(io.slot));
        if (!v.armed || !v.valid) {
            r.key_fails.add(where() + ": crypto I/O succeeded on slot " + std::to_string(io.slot) +
                            ", which the register model says is not armed with a valid config");
        } else if (v.key_fp != io.key_fp) {
            r.key_fails.add(where() + ": used key " + short_fp(io.key_fp) + " but slot " +
                            std::to_string(io.slot) + " was last programmed with " +
                            short_fp(v.key_fp));
        }
    }
    if (!good) {
        return;
    }
    bool modelled = false;
    // Pieces of files on this LU (cached per controller: the key is (ctrl, lun)).
    auto lu = lu_cache_.find(io.lun);
    if (lu == lu_cache_.end()) {
        auto f = pieces_by_lu_.find({ctrl, io.lun});
        lu = lu_cache_.emplace(io.lun, f == pieces_by_lu_.end() ? nullptr : &f->second).first;
    }
    if (lu->second) {
        const std::vector<std::size_t>& lu_pieces = *lu->second;
        const std::uint64_t bs = io.block_size ? io.block_size : 4096;
        const std::uint64_t s0 = io.lba * bs, s1 = s0 + io.blocks * bs;
        for (std::size_t idx : lu_pieces) {
            const Piece& p = pieces_[idx];
            FileModel& fm = fms_[p.file];
            if (r.have_marks && (step < fm.from || step >= fm.to)) {
                continue;
            }
            const std::uint64_t a = std::max(s0, p.dev_off), b = std::min(s1, p.dev_off + p.len);
            if (a >= b) {
                continue;
            }
            const bool write = io.op == ev::IoOp::write;
            if (write) {
                fm.any_writes[ctrl] += b - a;
            }
            if (!io.ce) {
                if (write) {
                    fm.plain_writes[ctrl] += b - a;
                    if (fm.encrypted && fm.native) {
                        r.plain_fails.add(where() + ": CE=0 write of " + std::to_string(b - a) +
                                          " bytes inside " + fm.path + " (file offset " +
                                          std::to_string(p.file_off + (a - p.dev_off)) + ", " +
                                          fm.policy_name +
                                          " policy, native inline crypto expected): the "
                                          "controller stored it as the kernel sent it, "
                                          "not encrypted by the inline engine");
                    }
                }
                continue;
            }
            if (write) {
                fm.ce_writes[ctrl] += b - a;
            }
            if (fm.encrypted && fm.decided && !fm.native) {
                r.fallback_fails.add(
                    where() + ": CE=1 " + std::string(ev::to_string(io.op)) + " of " +
                    std::to_string(b - a) + " bytes inside " + fm.path + " (" + fm.policy_name +
                    " policy): the models predict blk-crypto-fallback for it (not mounted "
                    "inlinecrypt, or its data unit size or DUN width is not in the device's "
                    "crypto profile), yet the controller transformed it");
            }
            if (!fm.predictable) {
                continue;
            }
            modelled = true;
            if (io.key_fp != fm.key_fp) {
                r.key_fails.add(where() + ": " + fm.path + " (" + fm.policy_name +
                                ") was transformed with key " + short_fp(io.key_fp) +
                                ", the fscrypt model expects " + fm.key_fp);
            }
            if (fm.on_dm && !r.first_program.count(fm.key_fp)) {
                r.dm_key_fails.add(where() + ": I/O for " + fm.path +
                                   " through the dm device, but " + ctrl +
                                   " was never programmed with its key " + fm.key_fp);
            }
            const std::uint64_t du = io.dusize;
            if (du != (1ull << fm.du_bits)) {
                r.dun_fails.add(where() + ": data unit " + std::to_string(du) +
                                " bytes, the policy of " + fm.path + " uses " +
                                std::to_string(1ull << fm.du_bits));
                continue;
            }
            for (std::uint64_t pos : {a, b - du}) {
                if ((pos - s0) % du != 0 || pos < a) {
                    continue;
                }
                const std::uint64_t got = io.dun + (pos - s0) / du;
                const std::uint64_t foff = p.file_off + (pos - p.dev_off);
                const std::uint64_t want = fm.dun_at(foff);
                ++r.dun_checked;
                if (got != want) {
                    const auto diff = static_cast<std::int64_t>(got - want);
                    r.dun_fails.add(where() + ": data unit at " + fm.path + " offset " +
                                    std::to_string(foff) + " had DUN " + hex_u64(got) +
                                    ", the filesystem assigned " + hex_u64(want) + " (" +
                                    (diff > 0 ? "+" : "") + std::to_string(diff) + " units)");
                    break;
                }
            }
        }
    }
    if (!io.ce) {
        return;
    }
    if (modelled) {
        ++r.ce_model;
        return;
    }
    // No reported extents cover this io: check the key against the keys the models derive, and
    // for IV_INO_LBLK_64 the DUN's inode field (bits 63..32) against the reported inodes.
    auto d = derivable_.find(io.key_fp);
    if (d != derivable_.end()) {
        ++r.ce_keyset;
        if (d->second.second == fc::Policy::iv_ino_lblk_64 && !lblk64_inos_.empty()) {
            ++r.dun_ino_checked;
            if (!lblk64_inos_.count(io.dun >> 32)) {
                r.dun_fails.add(where() + ": DUN " + hex_u64(io.dun) + " with " + d->second.first +
                                ": inode field " + std::to_string(io.dun >> 32) +
                                " is not the inode of any file under an IV_INO_LBLK_64 policy");
            }
        }
    } else if (only_lblk_ && !derivable_.empty()) {
        ++r.ce_keyset;
        r.key_fails.add(where() + ": key " + short_fp(io.key_fp) +
                        " is none of the keys the fscrypt model derives from the added master "
                        "keys (every policy is IV_INO_LBLK_*)");
    } else {
        ++r.ce_consistency;
    }
}

void Checker::replay(const LogInput& log) {
    CtrlResult& r = res_[log.ctrl];
    if (!log.error.empty() || log.events.empty()) {
        return;
    }
    const auto* rz = std::get_if<ev::Realize>(&log.events.front().body);
    if (!rz) {
        return;
    }
    r.replayed = true;
    // event_log_bytes[i]: the log's size after step i, so the event at byte offset o happened
    // during step #{marks <= o} (0 = boot).
    const std::vector<std::uint64_t> marks = marks_of(log.ctrl);
    r.have_marks = !marks.empty();
    auto mark = marks.begin();
    std::size_t step = 0;
    lu_cache_.clear();
    uc::LogReplay rp(*rz);
    ks::TrafficChecker tc(rz->slots);
    std::vector<std::string> pending(rz->slots);
    std::vector<std::uint64_t> pending_seq(rz->slots);
    auto cp = checkpoints_.begin();
    auto capture = [&](std::size_t s) {
        auto& m = r.slots_at[s];
        for (unsigned k = 0; k < rz->slots; ++k) {
            const auto& v = rp.slot(k);
            if (v.armed && !v.key_fp.empty()) {
                m[k] = v.key_fp;
            }
        }
    };
    for (std::size_t k = 0; k < log.events.size(); ++k) {
        const ev::Event& e = log.events[k];
        while (mark != marks.end() && *mark <= log.offsets[k]) {
            ++mark;
            ++step;
        }
        while (cp != checkpoints_.end() && *cp < step) {
            capture(*cp++);
        }
        if (const auto* w = std::get_if<ev::Wipe>(&e.body)) {
            bool held = false;
            for (unsigned s = 0; s < rz->slots; ++s) {
                const auto& v = rp.slot(s);
                if (v.armed && v.valid && !v.key_fp.empty()) {
                    pending[s] = v.key_fp;
                    pending_seq[s] = e.seq;
                    held = true;
                }
            }
            r.wipes_with_keys += held || w->armed > 0;
        } else if (const auto* p = std::get_if<ev::Program>(&e.body)) {
            if (p->slot < rz->slots) {
                pending[p->slot].clear();
            }
            if (p->ok) {
                r.first_program.emplace(p->key_fp, e.seq);
            }
        } else if (const auto* x = std::get_if<ev::Evict>(&e.body)) {
            if (x->slot < rz->slots) {
                pending[x->slot].clear();
            }
        }
        if (k > 0) {
            rp.apply(e); // the replay was constructed from the realize event
        }
        tc.observe(e);
        if (const auto* io = std::get_if<ev::Io>(&e.body)) {
            if (io->ce && io->slot >= 0 && static_cast<unsigned>(io->slot) < rz->slots &&
                !pending[static_cast<unsigned>(io->slot)].empty()) {
                const auto s = static_cast<unsigned>(io->slot);
                r.reset_fails.add(log.ctrl + " seq " + std::to_string(e.seq) + " (" +
                                  step_name(step) + "): crypto I/O on slot " + std::to_string(s) +
                                  (io->error.empty() ? "" : " (refused: " + io->error + ")") +
                                  " after the wipe at seq " + std::to_string(pending_seq[s]) +
                                  ", before key " + pending[s] + " was reprogrammed");
                pending[s].clear();
            }
            handle_io(log.ctrl, r, e, *io, step, rp);
        }
    }
    while (cp != checkpoints_.end()) {
        capture(*cp++);
    }
    rp.finish();
    for (const auto& m : rp.mismatches()) {
        r.log_fails.add(log.ctrl + " seq " + std::to_string(m.seq) + ": " + m.what);
    }
    for (const auto& f : tc.findings()) {
        const std::string d = log.ctrl + " seq " + std::to_string(f.seq) + ": " +
                              std::string(ks::to_string(f.kind)) + ": " + f.detail;
        switch (f.kind) {
        case ks::Finding::Kind::evict_of_empty_slot:
            r.log_fails.add(d);
            break;
        case ks::Finding::Kind::duplicate_key:
            r.stale_fails.add(d);
            break;
        case ks::Finding::Kind::missing_reprogram:
            r.reset_fails.add(d);
            break;
        case ks::Finding::Kind::io_on_unprogrammed_slot:
        case ks::Finding::Kind::io_key_mismatch:
            r.key_fails.add(d);
            break;
        }
    }
}

void Checker::replay_all() {
    for (const auto& rc : removals_) {
        checkpoints_.insert(rc.step);
    }
    for (const auto& rc : ic_removals_) {
        checkpoints_.insert(rc.step);
    }
    for (const auto& [ctrl, log] : in_.logs) {
        replay(log);
    }
}

// ---- verdicts --------------------------------------------------------------------------------

Verdict make(int n, std::string name, std::string title) {
    Verdict v;
    v.invariant = n;
    v.name = std::move(name);
    v.title = std::move(title);
    return v;
}

// Ends a verdict judged at model level: pass unless something failed; the reason is `summary`,
// followed by "; <fails> <noun>" when it did.
void conclude(Verdict& v, std::uint64_t fails, const std::string& summary, const char* noun) {
    v.level = "model";
    v.status = fails ? Status::fail : Status::pass;
    v.reason = summary + (fails ? "; " + std::to_string(fails) + " " + noun : "");
}

void take(Verdict& v, const Findings& f, std::size_t max) {
    for (const auto& s : f.items) {
        if (v.details.size() >= max) {
            v.details.push_back("... (" + std::to_string(f.count) + " in all)");
            return;
        }
        v.details.push_back(s);
    }
}

Verdict Checker::v0_logs() {
    Verdict v =
        make(0, "event-logs",
             "the event logs parse and replay through the crypto engine model (UFSHCI or CQHCI)");
    if (in_.logs.empty()) {
        v.reason = "no event log was given";
        return v;
    }
    v.level = "model";
    std::uint64_t n = 0, events = 0;
    for (const auto& [ctrl, log] : in_.logs) {
        if (!log.error.empty()) {
            v.details.push_back(log.error);
            ++n;
            continue;
        }
        if (log.torn_tail) {
            v.details.push_back(ctrl + ": torn last line ignored");
        }
        events += log.events.size();
        const auto& r = res_[ctrl];
        n += r.log_fails.count;
        take(v, r.log_fails, opt_.max_details);
    }
    v.status = n ? Status::fail : Status::pass;
    v.reason = n ? std::to_string(n) + " problem(s) in the logs"
                 : std::to_string(in_.logs.size()) + " log(s), " + std::to_string(events) +
                       " events: LogReplay and the keyslot traffic policy found nothing";
    return v;
}

Verdict Checker::v1_keys() {
    Verdict v =
        make(1, "keys-armed", "every crypto I/O used an armed slot holding the expected key");
    std::uint64_t ce = 0, model = 0, keyset = 0, cons = 0, fails = identifier_fails_.size();
    for (const auto& s : identifier_fails_) {
        v.details.push_back(s);
    }
    for (const auto& [ctrl, r] : res_) {
        ce += r.ce_ok;
        model += r.ce_model;
        keyset += r.ce_keyset;
        cons += r.ce_consistency;
        fails += r.key_fails.count;
        take(v, r.key_fails, opt_.max_details);
    }
    if (ce == 0 && identifier_checks_.empty() && fails == 0) {
        v.reason = "no successful crypto I/O in the logs";
        return v;
    }
    v.level = ce == 0               ? "model (key identifiers only)"
              : model + keyset != 0 ? (cons ? "model+consistency" : "model")
                                    : "consistency";
    v.status = fails ? Status::fail : Status::pass;
    std::ostringstream o;
    o << ce << " crypto I/O(s): " << model
      << " inside reported file extents checked against that file's model key, " << keyset
      << " against the set of keys the model derives from the added master keys (no extents "
         "cover them), "
      << cons << " only against the slot's last program; "
      << identifier_checks_.size() + identifier_fails_.size()
      << " key identifier(s) checked against HKDF";
    if (fails) {
        o << "; " << fails << " failure(s)";
    }
    v.reason = o.str();
    for (const auto& fm : fms_) {
        if (fm.encrypted && !fm.predictable && v.details.size() < opt_.max_details) {
            v.details.push_back("no model prediction for " + fm.path + ": " + fm.why_not);
        }
    }
    return v;
}

Verdict Checker::v2_dun() {
    Verdict v = make(2, "dun", "the DUN each device saw equals the DUN the filesystem assigned");
    std::uint64_t checked = 0, fails = 0, ino_checked = 0;
    for (const auto& [ctrl, r] : res_) {
        checked += r.dun_checked;
        ino_checked += r.dun_ino_checked;
        fails += r.dun_fails.count;
        take(v, r.dun_fails, opt_.max_details);
    }
    if (checked == 0 && ino_checked > 0) {
        v.level = "model (inode field only)";
        v.status = fails ? Status::fail : Status::pass;
        v.reason = std::to_string(ino_checked) +
                   " IV_INO_LBLK_64 crypto I/O(s) without reported extents: only the DUN's inode "
                   "field was checked against the reported inodes (file_info would allow the "
                   "full check)";
        return v;
    }
    if (checked == 0 && fails == 0) {
        std::size_t pred = 0;
        for (const auto& fm : fms_) {
            pred += fm.predictable && fm.npieces != 0;
        }
        v.reason = "no crypto I/O fell inside the extents of a file with inode, policy and FIEMAP "
                   "facts";
        return v;
    }
    conclude(v, fails,
             std::to_string(checked) +
                 " data unit(s) checked against fscrypt's DUN for the file offset (through the "
                 "dm mapping)" +
                 (ino_checked ? ", " + std::to_string(ino_checked) +
                                    " more I/O(s) only by the inode field of their DUN"
                              : ""),
             "mismatch(es)");
    return v;
}

Verdict Checker::v3_dm_keys() {
    Verdict v = make(3, "dm-key-fanin",
                     "a key used through a dm device was programmed on each underlying device "
                     "that received I/O for it");
    std::uint64_t fails = 0, files = 0;
    for (const auto& [ctrl, r] : res_) {
        fails += r.dm_key_fails.count;
        take(v, r.dm_key_fails, opt_.max_details);
    }
    for (const auto& fm : fms_) {
        if (!fm.on_dm || !fm.encrypted || fm.npieces == 0 || !fm.f->written) {
            continue;
        }
        ++files;
        std::string spread;
        for (const auto& [dev, bytes] : fm.bytes_on_ctrl) {
            spread += (spread.empty() ? "" : ", ") + dev + " " + std::to_string(bytes) + " B";
            if (!fm.native || !in_.logs.count(dev) || !res_[dev].replayed ||
                !res_[dev].have_marks) {
                continue;
            }
            auto w = fm.any_writes.find(dev);
            if (w == fm.any_writes.end() || w->second == 0) {
                ++fails;
                v.details.push_back(dev + " holds " + std::to_string(bytes) + " bytes of " +
                                    fm.path + " but received no write for them in " +
                                    step_name(fm.from));
            } else if (fm.predictable && !res_[dev].first_program.count(fm.key_fp)) {
                ++fails;
                v.details.push_back(dev + " received I/O for " + fm.path +
                                    " but was never "
                                    "programmed with its key " +
                                    fm.key_fp);
            }
        }
        if (v.details.size() < opt_.max_details) {
            v.details.push_back(fm.path + " (" + (fm.native ? "native" : "fallback") + ", key " +
                                short_fp(fm.key_fp) + "): " + spread);
        }
    }
    if (files == 0 && fails == 0) {
        // Consistency level: any dm device at all?
        bool dm_fs = false;
        for (const auto& f : fss_) {
            dm_fs = dm_fs || resolve(f.dev).value_or("").rfind("dm:", 0) == 0;
        }
        if (!dm_fs) {
            v.reason = "no filesystem on a dm device";
            return v;
        }
        v.level = "consistency";
        std::uint64_t k = 0;
        for (const auto& [ctrl, r] : res_) {
            k += r.key_fails.count;
        }
        v.status = k ? Status::fail : Status::pass;
        v.reason = "no file facts on the dm filesystem; every crypto I/O's key was checked against "
                   "the programs of its own controller (see invariant 1)";
        return v;
    }
    conclude(v, fails,
             std::to_string(files) + " encrypted file(s) on dm devices: each underlying "
                                     "controller holding part of one received its writes with "
                                     "the key programmed",
             "failure(s)");
    return v;
}

std::map<std::string, std::string> Checker::keys_for(std::size_t k) const {
    const MasterKey& mk = mks_[k];
    std::map<std::string, std::string> out;
    const std::string id = mk.identifier.substr(0, 8);
    for (const auto& f : fss_) {
        if (f.mnt != mk.mnt || f.uuid.size() != 16 || f.mount_step > mk.add_step ||
            f.umount_step < mk.add_step) {
            continue;
        }
        out[models::key_fingerprint(fc::iv_ino_lblk_64_key(mk.key, f.uuid))] =
            "IV_INO_LBLK_64 key of master key " + id;
        out[models::key_fingerprint(fc::iv_ino_lblk_32_key(mk.key, f.uuid))] =
            "IV_INO_LBLK_32 key of master key " + id;
    }
    for (const auto& fm : fms_) {
        if (fm.mk == &mk && fm.predictable) {
            out.emplace(fm.key_fp, "key of " + fm.path);
        }
    }
    return out;
}

Verdict Checker::v4_removal() {
    Verdict v =
        make(4, "keys-evicted", "after key removal / unmount no controller still holds the key");
    std::uint64_t fails = 0, checked = 0;
    for (const auto& [ctrl, r] : res_) {
        fails += r.stale_fails.count;
        take(v, r.stale_fails, opt_.max_details);
    }
    const json& snaps = at(in_.run, "snapshots");
    for (const auto& rc : removals_) {
        if (rc.busy) {
            v.details.push_back(rc.what + ": FILES_BUSY, the key is only partly removed; "
                                          "not checked");
            continue;
        }
        std::map<std::string, std::string> keys;
        for (std::size_t k : rc.keys) {
            auto m = keys_for(k);
            keys.insert(m.begin(), m.end());
        }
        // Keys observed in crypto I/O of this mount's files (even if the model disagrees).
        for (const auto& fm : fms_) {
            if (!fm.mk || fm.mk->mnt != rc.mnt) {
                continue;
            }
            bool ours = false;
            for (std::size_t k : rc.keys) {
                ours = ours || fm.mk == &mks_[k];
            }
            (void)ours;
        }
        if (keys.empty()) {
            continue;
        }
        ++checked;
        std::set<std::string> seen;
        auto report = [&](const std::string& ctrl, unsigned slot, const std::string& fp,
                          const char* src) {
            const std::string id = ctrl + "/" + std::to_string(slot) + "/" + src;
            if (!seen.insert(id).second) {
                return;
            }
            ++fails;
            v.details.push_back("after " + rc.what + ": " + ctrl + " slot " + std::to_string(slot) +
                                " still holds " + fp + " (" + keys[fp] + ") [" + src + "]");
        };
        for (const auto& [ctrl, r] : res_) {
            auto it = r.slots_at.find(rc.step);
            if (r.have_marks && it != r.slots_at.end()) {
                for (const auto& [slot, fp] : it->second) {
                    if (keys.count(fp)) {
                        report(ctrl, slot, fp, "event log");
                    }
                }
            }
        }
        if (rc.step < snaps.size()) {
            const json& cs = at(snaps[rc.step], "crypto_state");
            for (const auto& [ctrl, st] : cs.items()) {
                if (!st.is_object()) {
                    continue;
                }
                for (const auto& sl : at(st, "slots")) {
                    const std::string fp = str(sl, "key_fp");
                    if (sl.value("armed", false) && keys.count(fp)) {
                        report(ctrl, static_cast<unsigned>(u64(sl, "slot")), fp, "QMP snapshot");
                    }
                }
            }
        }
        if (v.details.size() < opt_.max_details) {
            v.details.push_back(rc.what + ": " + std::to_string(keys.size()) +
                                " derived key(s) checked on every controller");
        }
    }
    for (const auto& rc : ic_removals_) {
        ++checked;
        std::set<std::string> seen;
        auto report = [&](const std::string& ctrl, unsigned slot, const std::string& fp,
                          const char* src) {
            if (!seen.insert(ctrl + "/" + std::to_string(slot) + "/" + src).second) {
                return;
            }
            ++fails;
            v.details.push_back("after " + rc.what + ": " + ctrl + " slot " + std::to_string(slot) +
                                " still holds " + fp + " (" + rc.keys.at(fp) + ") [" + src + "]");
        };
        for (const auto& [ctrl, r] : res_) {
            auto it = r.slots_at.find(rc.step);
            if (r.have_marks && it != r.slots_at.end()) {
                for (const auto& [slot, fp] : it->second) {
                    if (rc.keys.count(fp)) {
                        report(ctrl, slot, fp, "event log");
                    }
                }
            }
        }
        if (rc.step < snaps.size()) {
            for (const auto& [ctrl, st] : at(snaps[rc.step], "crypto_state").items()) {
                for (const auto& sl : at(st, "slots")) {
                    const std::string fp = str(sl, "key_fp");
                    if (sl.value("armed", false) && rc.keys.count(fp)) {
                        report(ctrl, static_cast<unsigned>(u64(sl, "slot")), fp, "QMP snapshot");
                    }
                }
            }
        }
        if (v.details.size() < opt_.max_details) {
            v.details.push_back(rc.what + ": dm-inlinecrypt key(s) checked on every controller");
        }
    }
    if (checked == 0 && fails == 0) {
        v.reason = removals_.empty() ? "no remove_key or umount step"
                                     : "no key to check (no master key added on those mounts)";
        return v;
    }
    conclude(v, fails,
             std::to_string(checked) + " removal(s) checked against the event-log slot table and "
                                       "the QMP snapshot",
             "stale slot(s)");
    return v;
}

Verdict Checker::v5_sysfs() {
    Verdict v =
        make(5, "dm-sysfs", "sysfs queue/crypto of the dm device equals the dm_passthrough model");
    std::uint64_t fails = 0, dmn = 0;
    for (const auto& c : sysfs_) {
        const dm::SysfsCrypto& w = c.want;
        std::ostringstream why;
        const bool got_present = c.got.is_object();
        if (got_present != w.present) {
            why << (w.present ? "missing" : "present") << ", the model says "
                << (w.present ? "present" : "absent") << " (reported " << c.got.dump() << ")";
        } else if (w.present) {
            if (u64(c.got, "max_dun_bits") != w.max_dun_bits) {
                why << "max_dun_bits " << u64(c.got, "max_dun_bits") << " != " << w.max_dun_bits
                    << "; ";
            }
            if (c.got.contains("num_keyslots") && u64(c.got, "num_keyslots") != w.num_keyslots) {
                why << "num_keyslots " << u64(c.got, "num_keyslots") << " != " << w.num_keyslots
                    << "; ";
            }
            std::map<std::string, std::uint32_t> gm;
            for (const auto& [name, val] : at(c.got, "modes").items()) {
                gm[name] = static_cast<std::uint32_t>(
                    val.is_string() ? std::stoul(val.get<std::string>(), nullptr, 0)
                                    : val.get<std::uint32_t>());
            }
            if (gm != w.modes) {
                why << "modes " << at(c.got, "modes").dump() << " != {";
                for (const auto& [name, mask] : w.modes) {
                    why << name << ":" << hex_u64(mask) << " ";
                }
                why << "}";
            }
        }
        dmn += c.what == "dm device";
        const std::string head = step_name(c.step) + " " + c.what + " " + c.disk;
        if (!why.str().empty()) {
            ++fails;
            v.details.push_back(head + ": " + why.str());
        } else if (v.details.size() < opt_.max_details) {
            v.details.push_back(head + ": " + (w.present ? "matches" : "absent, as predicted"));
        }
    }
    if (dmn == 0 && fails == 0) {
        v.reason = "no dm device in any disks report";
        return v;
    }
    conclude(v, fails,
             std::to_string(sysfs_.size()) + " queue/crypto reading(s) (" + std::to_string(dmn) +
                 " of dm devices) compared with the model",
             "mismatch(es)");
    return v;
}

Verdict Checker::v6_reload() {
    Verdict v = make(6, "dm-reload-rule",
                     "a reload with fewer capabilities is rejected (EINVAL), one with equal or "
                     "more accepted");
    std::uint64_t fails = 0, reloads = 0;
    for (const auto& l : loads_) {
        reloads += l.reload;
        const std::string head = step_name(l.step) + " " + l.name + (l.reload ? " (reload)" : "");
        const bool want_ok = l.model_rc == 0;
        if (!l.ok && l.errno_name != "EINVAL") {
            v.details.push_back(head + ": failed with " + l.errno_name + ", not a crypto verdict");
            continue;
        }
        if (want_ok != l.ok) {
            ++fails;
            v.details.push_back(head + ": the kernel " + (l.ok ? "accepted" : "rejected (EINVAL)") +
                                ", the model " +
                                (want_ok ? "accepts it"
                                         : "rejects it: the new table lacks "
                                           "capabilities of the live profile") +
                                (l.why.empty() ? "" : " (" + l.why + ")"));
        } else if (v.details.size() < opt_.max_details) {
            v.details.push_back(head + ": " + (l.ok ? "accepted" : "rejected with EINVAL") +
                                ", as the model predicts");
        }
    }
    if (reloads == 0 && fails == 0) {
        v.reason = loads_.empty() ? "no dm_load step" : "no reload of a loaded dm device";
        return v;
    }
    conclude(v, fails,
             std::to_string(loads_.size()) + " dm_load(s), " + std::to_string(reloads) +
                 " reload(s) compared with the model's reload rule",
             "disagreement(s)");
    return v;
}

Verdict Checker::v7_medium() {
    Verdict v = make(7, "medium",
                     "ciphertext on the medium is the model's encryption of the known plaintext; "
                     "no plaintext reached an encrypted region");
    std::uint64_t fails = 0, plain_checked = 0;
    std::uint64_t fallback_ce = 0;
    for (const auto& [ctrl, r] : res_) {
        fails += r.plain_fails.count + r.fallback_fails.count;
        fallback_ce += r.fallback_fails.count;
        take(v, r.plain_fails, opt_.max_details);
        take(v, r.fallback_fails, opt_.max_details);
    }
    for (const auto& fm : fms_) {
        plain_checked += fm.encrypted && fm.npieces != 0;
    }
    // Medium comparison.
    std::uint64_t units = 0, bad_units = 0, plain_units = 0, budget = opt_.max_media_bytes;
    std::size_t files = 0;
    std::vector<std::string> skipped;
    if (opt_.check_media) {
        for (const auto& fm : fms_) {
            if (!fm.encrypted || fm.npieces == 0 || !fm.f->written) {
                continue;
            }
            if (!fm.predictable) {
                skipped.push_back(fm.path + ": " + fm.why_not);
                continue;
            }
            if (fm.to != kNever) {
                skipped.push_back(fm.path + ": removed or rewritten before the end");
                continue;
            }
            bool counted = false;
            models::XtsCipher cipher(fm.key);
            const std::uint64_t du = 1ull << fm.du_bits;
            for (const auto& p : pieces_) {
                if (&fms_[p.file] != &fm) {
                    continue;
                }
                auto img = in_.images.find(p.disk);
                if (img == in_.images.end()) {
                    continue;
                }
                std::ifstream f(img->second, std::ios::binary);
                if (!f) {
                    continue;
                }
                if (!counted) {
                    ++files;
                    counted = true;
                }
                Bytes medium(du), pt(du), want(du);
                std::uint64_t first_bad = kNever;
                for (std::uint64_t o = 0; o + du <= p.len && budget >= du; o += du) {
                    const std::uint64_t foff = p.file_off + o;
                    if (foff + du > fm.f->size || foff % du) {
                        continue; // only whole data units inside the file
                    }
                    f.seekg(static_cast<std::streamoff>(p.dev_off + o));
                    f.read(reinterpret_cast<char*>(medium.data()),
                           static_cast<std::streamsize>(du));
                    if (!f) {
                        f.clear();
                        break;
                    }
                    budget -= du;
                    pattern::fill(fm.f->seed, foff, pt.data(), pt.size());
                    cipher.encrypt(fm.dun_at(foff), du, pt, want);
                    ++units;
                    if (medium != want) {
                        ++bad_units;
                        plain_units += medium == pt;
                        if (first_bad == kNever) {
                            first_bad = foff;
                        }
                    }
                }
                if (first_bad != kNever) {
                    ++fails;
                    v.details.push_back(fm.path + " on " + p.disk + " (" + img->second +
                                        "): medium differs from the model's ciphertext from file "
                                        "offset " +
                                        std::to_string(first_bad) + " (device byte " +
                                        std::to_string(p.dev_off + (first_bad - p.file_off)) + ")" +
                                        (plain_units ? "; " + std::to_string(plain_units) +
                                                           " unit(s) hold the PLAINTEXT"
                                                     : ""));
                }
            }
        }
    }
    for (const auto& s : skipped) {
        if (v.details.size() < opt_.max_details) {
            v.details.push_back("medium not compared for " + s);
        }
    }
    if (plain_checked == 0 && units == 0 && fails == 0) {
        v.reason = "no encrypted file with FIEMAP extents was reported";
        return v;
    }
    v.status = fails ? Status::fail : Status::pass;
    v.level = units ? "model (medium)" : "events (no medium compared)";
    v.reason = std::to_string(plain_checked) + " encrypted file(s) checked for CE=0 writes; " +
               std::to_string(units) + " data unit(s) of " + std::to_string(files) +
               " file(s) compared with the model's ciphertext" +
               (bad_units ? " (" + std::to_string(bad_units) + " differ)" : "") +
               (fallback_ce ? "; " + std::to_string(fallback_ce) +
                                  " CE I/O(s) inside files the models send to "
                                  "blk-crypto-fallback"
                            : "") +
               (!opt_.check_media ? " (medium check disabled)" : "");
    return v;
}

Verdict Checker::v8_reset() {
    Verdict v = make(8, "reprogram-after-reset",
                     "after a host reset every key in use was reprogrammed before its next "
                     "crypto I/O");
    std::uint64_t wipes = 0, fails = 0;
    for (const auto& [ctrl, r] : res_) {
        wipes += r.wipes_with_keys;
        fails += r.reset_fails.count;
        take(v, r.reset_fails, opt_.max_details);
    }
    if (wipes == 0 && fails == 0) {
        v.reason = "no wipe or reset while a slot held a key";
        return v;
    }
    conclude(v, fails,
             std::to_string(wipes) + " wipe(s) with keys held; keyslots::TrafficChecker and the "
                                     "next crypto I/O per slot checked",
             "failure(s)");
    return v;
}

std::vector<Verdict> Checker::run() {
    const std::string rel = str(at(in_.run, "hello"), "release");
    kv_ = opt_.kernel
              ? *opt_.kernel
              : (rel.rfind("6.", 0) == 0 ? dm::KernelVersion::v6_12 : dm::KernelVersion::v7_3);
    load_disks();
    walk_steps();
    build_file_models();
    replay_all();
    return {v0_logs(),  v1_keys(),   v2_dun(),    v3_dm_keys(), v4_removal(),
            v5_sysfs(), v6_reload(), v7_medium(), v8_reset()};
}

} // namespace

std::vector<Verdict> check(const Inputs& in, const Options& opt) {
    Checker c(in, opt);
    return c.run();
}

} // namespace icemu::checker
