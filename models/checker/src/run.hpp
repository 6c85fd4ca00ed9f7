// icemu-check internals shared by its stages (see checker.cpp for the pipeline):
//   facts.cpp    run.json + scenario -> Facts (one handler per guest op)
//   files.cpp    Facts -> Models (fscrypt / dm-inlinecrypt file models mapped onto LUs)
//   replay.cpp   each controller's log through LogReplay + TrafficChecker -> CtrlResult
//   verdicts.cpp the invariants' judge functions and the invariant table
#pragma once

#include "icemu/checker/checker.hpp"
#include "icemu/models/fscrypt.hpp"

#include <limits>
#include <set>

namespace icemu::checker::detail {

namespace ev = models::events;
namespace fc = models::fscrypt;
namespace dm = models::dm;
using models::Bytes;

inline constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();

// ---- small helpers (util.cpp) -----------------------------------------------------------------

const json& at(const json& j, const char* k);
std::string str(const json& j, const char* k, std::string d = "");
std::uint64_t u64(const json& j, const char* k, std::uint64_t d = 0);
bool starts_under(const std::string& path, const std::string& dir);
std::string hex_u64(std::uint64_t v);
Bytes parse_uuid(const std::string& s);
inline std::string short_fp(const std::string& fp) {
    return fp.empty() ? "(none)" : fp;
}
inline bool is_dm(const std::optional<std::string>& resolved) {
    return resolved.value_or("").rfind("dm:", 0) == 0;
}

// ---- facts: what the scenario and run.json say -------------------------------------------------

struct Disk {
    std::string name; ///< scenario disk name
    std::string sys, dev_path, devnum;
    std::string ctrl; ///< "" for virtio
    unsigned lun = 0;
    bool crypto_ctrl = false; ///< the scenario says crypto: true
    std::string caps;         ///< scenario caps string ("" = device default)
    unsigned keyslots = 32;
    bool emmc = false; ///< sdhci-pci + CQHCI ("type": "emmc"): 32-bit DUNs, 512-byte blocks
    std::uint64_t size_bytes = 0; ///< the guest's size of the disk (disk_map), 0 if unknown
};

using SegMap = std::map<std::string, std::vector<dm::Segment>>; // dm name -> live segments

struct DmState {
    dm::DmDevice model;
    std::vector<dm::Segment> live, inactive;
    std::string sysname, devnum;
    unsigned loads = 0;
    explicit DmState(const dm::KernelRules& v) : model(v) {}
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

/// One device of a multi-device F2FS: the filesystem's block addresses [start, start + len)
/// (bytes) are bytes [0, len) of `dev`.
struct FsDev {
    std::string dev;
    std::uint64_t start = 0, len = 0;
};

/// What a mkfs step made (by device token).
struct MkfsF {
    Bytes uuid;
    unsigned blkbits = 12;
    std::string fstype = "ext4";
    std::vector<std::string> devices; ///< F2FS `-c` devices after the main one
};

struct Fs {
    std::string mnt, dev;
    std::string fstype = "ext4";
    Bytes uuid;
    unsigned blkbits = 12;
    bool inlinecrypt = false;
    std::size_t mount_step = 0, umount_step = kNever;
    /// A multi-device F2FS: every device in order (the first is `dev`), laid out by the
    /// f2fs_layout model; empty for a one-device filesystem. `layout_note` says why a
    /// multi-device filesystem has no layout (a device of unknown size).
    std::vector<FsDev> devs;
    std::string layout_note;
};

struct MasterKey {
    std::string mnt, identifier;
    Bytes key; ///< the raw key; for a hardware-wrapped key its raw master key ("" if unknown)
    bool hw_wrapped = false; ///< a hardware-wrapped key (its identifier is the wrapped kind's)
    bool v1 = false;         ///< added by descriptor (v1 policies): `identifier` is the descriptor
    std::size_t add_step = 0, remove_step = kNever;
};

/// A raw master key of hardware-wrapped keys the checker knows: a 32-byte value (64 hex digits)
/// the scenario declares in `vars` or a step sends (e.g. the key an import step wraps).
struct HwMaster {
    Bytes key;
    std::string source;    ///< "scenario var mk" / "step 4 import_key key"
    std::string fp;        ///< fingerprint of the master key (a `km` event's master_fp)
    std::string inline_fp; ///< fingerprint of its inline encryption key (a wrapped program's)
};

struct Pol {
    std::string dir, identifier; ///< for a v1 policy, its master key descriptor
    unsigned version = 2;
    unsigned flags = 0, log2_du = 0;
    unsigned contents = 1, filenames = 4; ///< FSCRYPT_MODE_* (1 AES-256-XTS, 4 AES-256-CTS)
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
    /// A multi-device filesystem: each device's profile at write time (device token ->)
    std::map<std::string, dm::Profile> dev_profiles;
    std::optional<InlineRange> ic; ///< a write_dev range under dm-inlinecrypt
    std::string ic_dev;            ///< its segment's underlying device token
    std::uint64_t ic_dev_off = 0;  ///< byte offset on ic_dev of the range's start
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

/// A key removal the slot tables are checked after: remove_key / umount (master keys, indices
/// into Facts::mks) or dm_remove of a device with dm-inlinecrypt segments (`keys`: fp -> what).
struct RemovalCheck {
    std::size_t step;
    std::string what; ///< "step 13 remove_key /mnt ..."
    std::string mnt;
    std::vector<std::size_t> keys;
    bool busy = false;
};
struct IcRemoval {
    std::size_t step;
    std::string what;
    std::map<std::string, std::string> keys; ///< fp -> what
};

/// Everything the steps say, in step order.
struct Facts {
    const Inputs& in;
    dm::KernelRules kv;

    std::map<std::string, Disk> disks; ///< scenario disk name -> disk
    std::map<std::string, DmState> dms;
    std::map<std::string, MkfsF> mkfs; ///< dev token -> what mkfs made there
    std::vector<Fs> fss;
    std::vector<MasterKey> mks;
    std::vector<Pol> pols;
    std::vector<FileF> files;
    std::vector<LoadCheck> loads;
    std::vector<SysfsCheck> sysfs;
    std::vector<RemovalCheck> removals;
    std::vector<IcRemoval> ic_removals; ///< dm_remove of devices with dm-inlinecrypt keys
    std::vector<std::string> identifier_checks, identifier_fails;
    std::vector<HwMaster> hw_masters; ///< raw master keys of wrapped keys, in order of appearance
    /// Key blobs the guest got (import/generate: long-term; prepare: ephemeral, hex) -> index
    /// into hw_masters of the raw key inside, or nullopt when it is unknown (a generated key).
    std::map<std::string, std::optional<std::size_t>> blobs;

    Facts(const Inputs& i, const dm::KernelRules& v) : in(i), kv(v) {}

    std::string step_name(std::size_t i) const;
    std::optional<std::string> resolve(const std::string& token) const; // -> disk or "dm:NAME"
    dm::Profile lu_profile(const Disk& d) const;
    dm::Profile profile_of(const std::string& token) const;
    dm::DeviceProfiles device_profiles() const;
    SegMap live_segs() const;
    /// Ends the live record of the file at `path` (rewritten or removed at `step`).
    void end_file(const std::string& path, std::size_t step);
    /// A record of the file at `path`, written at `write_step`: the live dm mapping and the
    /// crypto profile of the mounted filesystem that holds it.
    FileF new_file(const std::string& path, std::size_t write_step) const;
    /// Merges file_info facts (inode, nonce, extents) reported at `step` into `f`.
    static void take_info(FileF& f, const json& facts, std::size_t step);
    /// Records a disks report's queue/crypto readings (step 0: the boot disks).
    void record_sysfs(std::size_t step, const json& disks);
};

/// Reads the scenario's disks and walks run.json's steps. Throws std::invalid_argument on a
/// step whose op is not in the guest-op vocabulary (guest_ops.hpp).
Facts gather_facts(const Inputs& in, const dm::KernelRules& kv);

// ---- models: each file's expected key, DUN and location ---------------------------------------

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
    /// A multi-device filesystem: whether the file's I/O is native on each controller (blk-
    /// crypto decides per device); `native` then says whether it is native anywhere.
    std::map<std::string, bool> native_ctrl;
    bool decided = false; ///< `native` was predicted from a known device profile
    bool on_dm = false;
    bool multi_dev = false; ///< on a multi-device filesystem (F2FS): its key goes to every device
    unsigned contents = 1;  ///< FSCRYPT_MODE_* of the policy's contents
    fc::Policy policy = fc::Policy::v2_default;
    std::string policy_name;
    unsigned du_bits = 12, blkbits = 12;
    Bytes key;
    std::string key_fp;
    const MasterKey* mk = nullptr;
    std::uint32_t hashed = 0;
    std::size_t from = 0, to = kNever; ///< steps whose I/O belongs to this file
    std::size_t npieces = 0;
    /// The extents could not be mapped through the dm tables (dm-thin allocates on write):
    /// the pieces are where the controllers' logs show the file's data units written, by key
    /// fingerprint and DUN (place_by_log).
    bool placed_by_log = false;
    std::map<std::string, std::uint64_t> bytes_on_ctrl;
    // filled by the replay
    std::map<std::string, std::uint64_t> ce_writes, plain_writes, any_writes;

    bool native_on(const std::string& ctrl) const {
        auto it = native_ctrl.find(ctrl);
        return it == native_ctrl.end() ? native : it->second;
    }
    /// "native", "fallback", or per controller ("native on ufs0, fallback on emmc0").
    std::string impl() const {
        std::string on, off;
        for (const auto& [c, n] : native_ctrl) {
            (n ? on : off) += (n ? on : off).empty() ? c : "+" + c;
        }
        if (!on.empty() && !off.empty()) {
            return "native on " + on + ", fallback on " + off;
        }
        return native ? "native" : "fallback";
    }

    std::uint64_t dun_at(std::uint64_t file_off) const {
        if (f->ic) {
            const std::uint64_t sector_in_target = file_off / 512 - f->ic->seg_start;
            return (f->ic->iv_offset + sector_in_target) >> (f->ic->sector_bits - 9);
        }
        return fc::dun(policy, file_off >> du_bits, f->ino, hashed);
    }
};

struct Models {
    std::vector<FileModel> fms;
    /// Keys the models derive from the reported facts (fingerprint -> what), for I/O that no
    /// file's extents cover: IV_INO_LBLK_64/32 keys of every master key and fs UUID, per-file
    /// keys of files with a nonce.
    std::map<std::string, std::pair<std::string, fc::Policy>> derivable;
    bool only_lblk = false;              ///< every policy is IV_INO_LBLK_*: no per-file keys
    std::set<std::uint64_t> lblk64_inos; ///< inodes of files under IV_INO_LBLK_64 policies
    std::vector<Piece> pieces;
    std::map<std::pair<std::string, unsigned>, std::vector<std::size_t>> pieces_by_lu;
};

Models build_models(const Facts& facts);

// ---- replay: what each controller's log shows --------------------------------------------------

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

struct CtrlResult {
    bool replayed = false;
    bool have_marks = false;
    Findings log_fails; // LogReplay + traffic policy findings
    Findings key_fails; // inv 1 consistency + model
    std::uint64_t ce_ok = 0, ce_model = 0, ce_keyset = 0, ce_consistency = 0;
    std::uint64_t dun_ino_checked = 0; ///< IV_INO_LBLK_64 DUNs whose inode field was checked
    Findings dun_fails;
    std::uint64_t dun_checked = 0;
    /// IV_INO_LBLK_32 (32-bit DUNs that wrap to 0 inside a file): CE requests of such files
    /// checked for crossing the wrap, those ending at DUN 0xffffffff and those starting at 0.
    std::uint64_t wrap_checked = 0, wrap_ends = 0, wrap_starts = 0;
    Findings wrap_fails;
    Findings plain_fails;
    Findings fallback_fails; ///< CE I/O inside a file the models send to blk-crypto-fallback
    Findings reset_fails;
    std::uint64_t wipes_with_keys = 0;
    Findings stale_fails; // duplicate_key findings
    Findings dm_key_fails;
    /// The replayed slot table (slot -> key fp of armed slots) as it was at the end of each
    /// step a removal is checked after.
    std::map<std::size_t, std::map<unsigned, std::string>> slots_at;
    std::map<std::string, std::uint64_t> first_program; // fp -> seq of first ok program
    // Hardware-wrapped keys (invariants 9 and 10).
    struct WrappedProgram {
        std::uint64_t seq = 0;
        std::size_t step = 0;
        unsigned slot = 0;
        std::string key_fp, master_fp; ///< the program's and its km PROGRAM's
    };
    std::vector<WrappedProgram> wrapped;
    std::uint64_t km_ops = 0, km_programs = 0; ///< km events; successful km PROGRAMs
    Findings km_fails;                         ///< km PROGRAM <-> wrapped program pairing
    std::set<std::string> generated;           ///< master_fp of successful km GENERATEs
};
using Results = std::map<std::string, CtrlResult>; ///< controller -> what its log showed

/// Replays every log once; fills the models' per-file write counters.
Results replay_logs(const Facts& facts, Models& models);

// ---- verdicts -----------------------------------------------------------------------------------

struct Run {
    const Inputs& in;
    const Options& opt;
    const Facts& facts;
    const Models& models;
    const Results& res;
};

} // namespace icemu::checker::detail
