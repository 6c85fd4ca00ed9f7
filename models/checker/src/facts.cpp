// icemu-check, stage 1: the facts of one run. The scenario gives the disks; run.json's steps,
// in order, feed the dm_passthrough model (dm_load / dm_resume / dm_clear / dm_remove) and give
// the guest's facts (mkfs UUID, mounts, master keys, policies, files with inode, nonce and
// FIEMAP extents). One handler per guest op (guest_ops.hpp); ops without a handler carry no
// fact the checker uses.
#include "icemu/guest_ops.hpp"
#include "run.hpp"

#include "icemu/models/f2fs.hpp"
#include "icemu/models/hw_wrapped.hpp"
#include "icemu/models/ufshci_crypto.hpp"

#include <stdexcept>

namespace icemu::checker::detail {

namespace uc = models::ufshci;

std::string Facts::step_name(std::size_t i) const {
    if (i == 0) {
        return "boot";
    }
    const json& steps = at(in.run, "steps");
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

std::optional<std::string> Facts::resolve(const std::string& token) const {
    if (token.rfind("/dev/mapper/", 0) == 0) {
        const std::string n = token.substr(12);
        return "dm:" + n;
    }
    for (const auto& [name, d] : dms) {
        if ((!d.sysname.empty() && (token == "/dev/" + d.sysname || token == d.sysname)) ||
            (!d.devnum.empty() && token == d.devnum)) {
            return "dm:" + name;
        }
    }
    for (const auto& [name, d] : disks) {
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

dm::Profile Facts::lu_profile(const Disk& d) const {
    if (d.ctrl.empty() || !d.crypto_ctrl) {
        return std::nullopt;
    }
    auto it = in.logs.find(d.ctrl);
    if (it != in.logs.end() && !it->second.events.empty()) {
        if (const auto* r = std::get_if<ev::Realize>(&it->second.events.front().body)) {
            std::vector<uc::CryptoCap> caps;
            for (const auto& c : r->caps) {
                caps.push_back(uc::CryptoCap{static_cast<uc::AlgId>(c.algid),
                                             static_cast<std::uint8_t>(c.sdusb),
                                             static_cast<uc::KeySize>(c.ks)});
            }
            return cqhci_dun(dm::ufs_profile(caps, r->slots, dm::key_types_of(*r, kv)),
                             d.emmc || r->frontend == "cqhci");
        }
    }
    if (in.run.is_object() && !in.run.value("engine", true)) {
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

dm::Profile Facts::profile_of(const std::string& token) const {
    auto r = resolve(token);
    if (!r) {
        return std::nullopt;
    }
    if (r->rfind("dm:", 0) == 0) {
        auto it = dms.find(r->substr(3));
        return it == dms.end() ? std::nullopt : it->second.model.queue_profile();
    }
    return lu_profile(disks.at(*r));
}

dm::DeviceProfiles Facts::device_profiles() const {
    dm::DeviceProfiles p;
    for (const auto& [name, d] : disks) {
        p[name] = lu_profile(d);
    }
    for (const auto& [name, d] : dms) {
        p["dm:" + name] = d.model.queue_profile();
    }
    return p;
}

void Facts::end_file(const std::string& path, std::size_t step) {
    for (auto& f : files) {
        if (f.path == path && f.end_step == kNever) {
            f.end_step = step;
        }
    }
}

FileF Facts::new_file(const std::string& path, std::size_t write_step) const {
    FileF f;
    f.path = path;
    f.write_step = write_step;
    f.segs = live_segs();
    for (const auto& fsys : fss) {
        if (fsys.umount_step == kNever && starts_under(path, fsys.mnt)) {
            f.dev_profile = profile_of(fsys.dev);
            f.dev_profiles.clear();
            if (fsys.devs.size() > 1) {
                // blk-crypto decides per device (files.cpp)
                for (const auto& d : fsys.devs) {
                    f.dev_profiles[d.dev] = profile_of(d.dev);
                }
            }
        }
    }
    return f;
}

void Facts::take_info(FileF& f, const json& facts, std::size_t step) {
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

SegMap Facts::live_segs() const {
    SegMap m;
    for (const auto& [name, d] : dms) {
        m[name] = d.live;
    }
    return m;
}

void Facts::record_sysfs(std::size_t i, const json& reported) {
    if (!reported.is_array()) {
        return;
    }
    for (const auto& d : reported) {
        const std::string dmn = str(d, "dm_name");
        if (!dmn.empty()) {
            auto it = dms.find(dmn);
            if (it != dms.end()) {
                sysfs.push_back({i, dmn, "dm device", it->second.model.sysfs(), at(d, "crypto")});
            }
            continue;
        }
        for (const auto& [name, disk] : disks) {
            if (!disk.sys.empty() && disk.sys == str(d, "name") && !disk.ctrl.empty()) {
                sysfs.push_back({i, name,
                                 disk.emmc ? "eMMC " + disk.ctrl
                                           : "UFS LU " + disk.ctrl + "/" + std::to_string(disk.lun),
                                 dm::sysfs_view(lu_profile(disk), true, kv), at(d, "crypto")});
            }
        }
    }
}

namespace {

// A scenario disk's guest names from a disk map (run.json "disk_map", or a reboot step's reply:
// sd probes are asynchronous, so LUs may swap sdX names across a reboot).
void bind_disk(Disk& d, const json& dmap) {
    if (dmap.contains(d.name) && dmap[d.name].is_object()) {
        const json& g = dmap[d.name];
        d.sys = str(g, "name");
        d.dev_path = str(g, "dev_path", d.sys.empty() ? "" : "/dev/" + d.sys);
        d.devnum = str(g, "dev");
        d.size_bytes = u64(g, "size_bytes");
    }
}

void load_disks(Facts& w) {
    const json& sc = w.in.scenario;
    const json& dmap = at(w.in.run, "disk_map");
    auto fill = [&](Disk& d) { bind_disk(d, dmap); };
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
                w.disks[d.name] = d;
            }
        }
        for (const auto& v : at(sc, "virtio_disks")) {
            Disk d;
            d.name = str(v, "name");
            fill(d);
            w.disks[d.name] = d;
        }
    }
}

// One step of run.json as a handler sees it.
struct Step {
    std::size_t i; ///< 1-based step number
    const json& rq;
    const json& rp;
    bool ok; ///< the guest replied ok
    std::string label;
};

void on_dm_create(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    auto [it, _] = w.dms.insert_or_assign(str(s.rq, "name"), DmState(w.kv));
    it->second.sysname = str(s.rp, "sysname");
    it->second.devnum = str(s.rp, "dev");
}

// Every load, failed or not, is a reload-rule fact; only a successful one becomes the inactive
// table.
void on_dm_load(Facts& w, const Step& s) {
    const std::string name = str(s.rq, "name");
    auto it = w.dms.find(name);
    if (it == w.dms.end()) {
        return;
    }
    dm::Table t;
    std::vector<dm::Segment> segs;
    std::string why;
    for (const auto& e : at(s.rq, "table")) {
        segs.push_back(
            dm::parse_segment(u64(e, "start"), u64(e, "len"), str(e, "type"), str(e, "params")));
        t.targets.push_back(
            segs.back().target([&](const std::string& tok) { return w.resolve(tok); }));
    }
    const bool reload = it->second.loads > 0;
    int rc;
    try {
        rc = it->second.model.load(t, w.device_profiles());
    } catch (const std::exception& e) {
        rc = 0;
        why = std::string("model: ") + e.what();
    }
    ++it->second.loads;
    w.loads.push_back({s.i, s.label, name, rc, reload, s.ok, str(s.rp, "errno_name"), why});
    if (s.ok) {
        it->second.inactive = segs;
    }
}

// The fingerprints of the dm-inlinecrypt keys in `segs`, each described as `name`'s key.
std::map<std::string, std::string> inlinecrypt_keys(const std::vector<dm::Segment>& segs,
                                                    const std::string& name) {
    std::map<std::string, std::string> keys;
    for (const auto& sg : segs) {
        if (sg.inline_crypt) {
            keys[models::key_fingerprint(sg.inline_crypt->key)] = "dm-inlinecrypt key of " + name;
        }
    }
    return keys;
}

// A resume that swaps in a loaded table destroys the live one (dm_swap_table, then
// dm_table_destroy): inlinecrypt_dtr evicts each of its keys the new table does not use.
void on_dm_resume(Facts& w, const Step& s) {
    auto it = w.dms.find(str(s.rq, "name"));
    if (!s.ok || it == w.dms.end()) {
        return;
    }
    it->second.model.resume();
    if (!it->second.inactive.empty()) {
        auto gone = inlinecrypt_keys(it->second.live, it->first);
        for (const auto& [fp, what] : inlinecrypt_keys(it->second.inactive, it->first)) {
            gone.erase(fp);
        }
        if (!gone.empty()) {
            w.ic_removals.push_back(IcRemoval{
                s.i, w.step_name(s.i) + " " + it->first + " (table reload)", std::move(gone)});
        }
        it->second.live = std::move(it->second.inactive);
        it->second.inactive.clear();
    }
}

void on_dm_clear(Facts& w, const Step& s) {
    auto it = w.dms.find(str(s.rq, "name"));
    if (!s.ok || it == w.dms.end()) {
        return;
    }
    it->second.model.clear();
    it->second.inactive.clear();
}

// inlinecrypt_dtr evicts the table's key from its underlying device (7.x): a key removal.
void on_dm_remove(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    auto it = w.dms.find(str(s.rq, "name"));
    if (it != w.dms.end()) {
        IcRemoval rc{s.i, w.step_name(s.i) + " " + it->first,
                     inlinecrypt_keys(it->second.live, it->first)};
        rc.keys.merge(inlinecrypt_keys(it->second.inactive, it->first));
        if (!rc.keys.empty()) {
            w.ic_removals.push_back(std::move(rc));
        }
    }
    w.dms.erase(str(s.rq, "name"));
}

// A known-pattern write to a dm-inlinecrypt device: one modelled range per segment.
void on_write_dev(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    const std::string dev = str(s.rq, "dev");
    const auto r = w.resolve(dev);
    const std::uint64_t off = u64(s.rq, "offset"), len = u64(s.rq, "size");
    if (!is_dm(r)) {
        return;
    }
    auto it = w.dms.find(r->substr(3));
    for (const auto& sg : it == w.dms.end() ? std::vector<dm::Segment>{} : it->second.live) {
        const std::uint64_t a = sg.start * 512, b = (sg.start + sg.len) * 512;
        const std::uint64_t lo = std::max(off, a), hi = std::min(off + len, b);
        if (sg.type != "inlinecrypt" || !sg.inline_crypt || lo >= hi) {
            continue;
        }
        const auto& ic = *sg.inline_crypt;
        FileF f;
        f.path = "write_dev " + dev + " [" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
        f.written = true;
        f.have_info = true;
        f.write_step = s.i;
        f.seed = u64(s.rq, "seed");
        f.size = hi; // pattern offsets are device offsets; units below lo are not mapped
        f.segs = w.live_segs();
        f.ic = InlineRange{it->first, ic.key, sg.start, ic.iv_offset, ic.sector_bits};
        f.ic_dev = sg.dev;
        f.ic_dev_off = sg.offset * 512 + (lo - a);
        f.extents = json::array({{{"logical", lo}, {"length", hi - lo}}});
        f.dev_profile = w.profile_of(sg.dev);
        for (auto& old : w.files) {
            if (old.ic && old.path == f.path && old.end_step == kNever) {
                old.end_step = s.i;
            }
        }
        w.files.push_back(std::move(f));
    }
}

void on_disks(Facts& w, const Step& s) {
    if (s.ok) {
        w.record_sysfs(s.i, at(s.rp, "disks"));
    }
}

// A scenario disk's device node as a step names it, kept as the disk's name: a reboot may give
// that node to another disk (gather_facts rebinds the disks), and a filesystem made or mounted
// before it stays on the disk the node named then. Anything else (dm, unknown) stays as it is.
std::string disk_token(const Facts& w, const std::string& token) {
    const auto r = w.resolve(token);
    return r && !is_dm(r) ? *r : token;
}

void on_mkfs(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    const unsigned bs = static_cast<unsigned>(u64(s.rq, "block_size", 4096));
    unsigned bits = 12;
    while ((1u << bits) < bs && bits < 16) {
        ++bits;
    }
    while ((1u << bits) > bs && bits > 9) {
        --bits;
    }
    MkfsF m;
    m.uuid = parse_uuid(str(s.rq, "uuid"));
    m.fstype = str(s.rq, "fstype", "ext4");
    m.blkbits = m.fstype == "f2fs" ? 12 : bits;
    if (const json& d = at(s.rq, "devices"); d.is_array()) {
        for (const auto& x : d) {
            if (x.is_string()) {
                m.devices.push_back(disk_token(w, x.get<std::string>()));
            }
        }
    }
    w.mkfs[disk_token(w, str(s.rq, "dev"))] = std::move(m);
}

// A multi-device F2FS: its devices in mkfs order, laid out by the f2fs model from the sizes
// the guest reported for the scenario's disks.
void f2fs_layout(Facts& w, Fs& f, const MkfsF& m) {
    std::vector<std::string> devs{f.dev};
    devs.insert(devs.end(), m.devices.begin(), m.devices.end());
    std::vector<std::uint64_t> sizes;
    for (const auto& d : devs) {
        const auto r = w.resolve(d);
        const std::uint64_t sz = r && !is_dm(r) ? w.disks.at(*r).size_bytes : 0;
        if (sz == 0 && f.layout_note.empty()) {
            f.layout_note = "the size of " + d + " is unknown (not a scenario disk with a size)";
        }
        sizes.push_back(sz);
    }
    const auto lay = models::f2fs::device_layout(sizes);
    for (std::size_t i = 0; i < devs.size(); ++i) {
        f.devs.push_back({devs[i], lay[i].first, lay[i].second});
    }
}

void on_mount(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    Fs f;
    f.mnt = str(s.rq, "dir");
    f.dev = disk_token(w, str(s.rq, "dev"));
    f.mount_step = s.i;
    f.inlinecrypt = str(s.rq, "options").find("inlinecrypt") != std::string::npos;
    f.fstype = str(s.rq, "fstype", "ext4");
    if (auto m = w.mkfs.find(f.dev); m != w.mkfs.end()) {
        f.uuid = m->second.uuid;
        f.blkbits = m->second.blkbits;
        if (f.fstype == "f2fs" && m->second.fstype == "f2fs" && !m->second.devices.empty()) {
            f2fs_layout(w, f, m->second);
        }
    }
    // The mounted filesystem's block size as the guest reports it (statvfs) wins over the one
    // derived from the mkfs request.
    if (const std::uint64_t bs = u64(s.rp, "block_size", 0); bs >= 512 && bs <= 65536) {
        unsigned bits = 9;
        while ((1ull << bits) < bs) {
            ++bits;
        }
        f.blkbits = bits;
    }
    w.fss.push_back(f);
}

void on_umount(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    for (auto& f : w.fss) {
        if (f.mnt == str(s.rq, "dir") && f.umount_step == kNever) {
            f.umount_step = s.i;
            RemovalCheck rc{s.i, w.step_name(s.i) + " " + f.mnt, f.mnt, {}, false};
            for (std::size_t k = 0; k < w.mks.size(); ++k) {
                if (w.mks[k].mnt == f.mnt && w.mks[k].add_step >= f.mount_step) {
                    rc.keys.push_back(k);
                }
            }
            w.removals.push_back(rc);
        }
    }
}

void on_add_key(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    MasterKey mk;
    mk.mnt = str(s.rq, "mnt");
    mk.key = models::from_hex(str(s.rq, "key"));
    mk.identifier = str(s.rp, "identifier");
    mk.add_step = s.i;
    if (s.rq.contains("descriptor")) {
        // A v1 key: named by the scenario's descriptor, which the kernel does not derive.
        mk.v1 = true;
        mk.identifier = str(s.rp, "descriptor", str(s.rq, "descriptor"));
        w.mks.push_back(mk);
        return;
    }
    const std::string want = models::to_hex(fc::key_identifier(mk.key));
    // A hardware-wrapped key (the request carries its ephemeral blob): the kernel's identifier
    // is the wrapped kind's (HKDF context 8 over the software secret, hw_wrapped.hpp), which
    // names the raw master key when the checker knows it.
    if (mk.identifier != want) {
        for (const auto& h : w.hw_masters) {
            if (models::to_hex(models::hw_wrapped::key_identifier(h.key)) == mk.identifier) {
                mk.hw_wrapped = true;
                mk.key = h.key;
                w.identifier_checks.push_back(w.step_name(s.i) +
                                              ": identifier of the hardware-wrapped key whose "
                                              "master key is " +
                                              h.source);
                w.mks.push_back(mk);
                return;
            }
        }
        if (s.rq.value("hw_wrapped", false)) {
            mk.hw_wrapped = true; // its master key is none the checker knows: not predictable
            mk.key.clear();
            w.mks.push_back(mk);
            return;
        }
    }
    if (mk.identifier != want) {
        w.identifier_fails.push_back(w.step_name(s.i) + ": the kernel returned identifier " +
                                     mk.identifier + ", the model derives " + want);
    } else {
        w.identifier_checks.push_back(w.step_name(s.i) + ": identifier " + want);
    }
    w.mks.push_back(mk);
}

// Hardware-wrapped keys: the chain raw key -> long-term blob (import_wrapped_key; a generated
// key's raw key is unknown) -> ephemeral blob (prepare_wrapped_key) -> key identifier
// (add_wrapped_key), so the identifier names the raw master key and the files under it are
// predicted with its inline encryption key.
std::size_t hw_master_index(Facts& w, const Bytes& k, const std::string& source) {
    for (std::size_t i = 0; i < w.hw_masters.size(); ++i) {
        if (w.hw_masters[i].key == k) {
            return i;
        }
    }
    w.hw_masters.push_back({k, source, models::key_fingerprint(k),
                            models::key_fingerprint(models::hw_wrapped::inline_encryption_key(k))});
    return w.hw_masters.size() - 1;
}

void on_import_wrapped_key(Facts& w, const Step& s) {
    const std::string key = str(s.rq, "key"), lt = str(s.rp, "lt_blob");
    if (!s.ok || key.size() != 64 || lt.empty()) {
        return;
    }
    w.blobs[lt] =
        hw_master_index(w, models::from_hex(key), w.step_name(s.i) + " import_wrapped_key key");
}

void on_generate_wrapped_key(Facts& w, const Step& s) {
    if (const std::string lt = str(s.rp, "lt_blob"); s.ok && !lt.empty()) {
        w.blobs[lt] = std::nullopt; // the device drew the raw key: nobody outside knows it
    }
}

void on_prepare_wrapped_key(Facts& w, const Step& s) {
    const std::string eph = str(s.rp, "eph_blob");
    if (!s.ok || eph.empty()) {
        return;
    }
    auto lt = w.blobs.find(str(s.rq, "blob"));
    w.blobs[eph] = lt == w.blobs.end() ? std::nullopt : lt->second;
}

void on_add_wrapped_key(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    MasterKey mk;
    mk.mnt = str(s.rq, "mnt");
    mk.identifier = str(s.rp, "identifier");
    mk.add_step = s.i;
    mk.hw_wrapped = true;
    const auto b = w.blobs.find(str(s.rq, "blob"));
    if (b != w.blobs.end() && b->second) {
        const HwMaster& h = w.hw_masters[*b->second];
        const std::string want = models::to_hex(models::hw_wrapped::key_identifier(h.key));
        if (mk.identifier == want) {
            mk.key = h.key;
            w.identifier_checks.push_back(w.step_name(s.i) +
                                          ": identifier of the hardware-wrapped key whose "
                                          "master key is " +
                                          h.source + " (through its blobs)");
        } else {
            w.identifier_fails.push_back(w.step_name(s.i) + ": the kernel returned identifier " +
                                         mk.identifier + " for the ephemeral blob of " + h.source +
                                         ", the hardware KDF gives " + want);
        }
    } else {
        // A blob of no reported import (generated, or from outside the run): the identifier may
        // still name a raw key the scenario declares.
        for (const auto& h : w.hw_masters) {
            if (models::to_hex(models::hw_wrapped::key_identifier(h.key)) == mk.identifier) {
                mk.key = h.key;
                w.identifier_checks.push_back(w.step_name(s.i) +
                                              ": identifier of the hardware-wrapped key whose "
                                              "master key is " +
                                              h.source);
                break;
            }
        }
    }
    w.mks.push_back(mk);
}

void on_remove_key(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    RemovalCheck rc{s.i, w.step_name(s.i) + " " + str(s.rq, "mnt"), str(s.rq, "mnt"), {}, false};
    rc.busy = s.rp.value("files_busy", false);
    for (std::size_t k = 0; k < w.mks.size(); ++k) {
        MasterKey& mk = w.mks[k];
        const std::string id =
            s.rq.contains("descriptor") ? str(s.rq, "descriptor") : str(s.rq, "identifier");
        if (mk.mnt == rc.mnt && mk.identifier == id && mk.remove_step == kNever) {
            mk.remove_step = s.i;
            rc.keys.push_back(k);
        }
    }
    w.removals.push_back(rc);
}

void on_set_policy(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    Pol p;
    p.dir = str(s.rq, "dir");
    p.identifier = str(s.rq, "identifier");
    const json& pol = at(s.rp, "policy");
    if (u64(pol, "version", u64(s.rq, "version", 2)) == 1) {
        p.version = 1;
        p.identifier = str(pol, "descriptor", str(s.rq, "descriptor"));
    }
    p.flags = static_cast<unsigned>(u64(pol, "flags", 0));
    p.log2_du =
        static_cast<unsigned>(u64(pol, "log2_data_unit_size", u64(s.rq, "log2_data_unit_size", 0)));
    if (!pol.contains("flags")) {
        const std::string fl = str(s.rq, "flags", "none");
        p.flags = fl == "iv_ino_lblk_64"   ? 0x08
                  : fl == "iv_ino_lblk_32" ? 0x10
                  : fl == "direct_key"     ? 0x04
                                           : 0;
    }
    p.contents = static_cast<unsigned>(u64(pol, "contents", 1));
    p.filenames = static_cast<unsigned>(u64(pol, "filenames", 4));
    p.step = s.i;
    w.pols.push_back(p);
}

void on_write_file(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    const std::string path = str(s.rq, "path");
    w.end_file(path, s.i);
    FileF f = w.new_file(path, s.i);
    f.written = true;
    f.seed = u64(s.rq, "seed");
    f.size = u64(s.rp, "size", u64(s.rq, "size"));
    if (s.rp.contains("ino")) {
        f.ino = u64(s.rp, "ino");
        f.have_ino = true;
    }
    w.files.push_back(std::move(f));
}

void on_file_info(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    const std::string path = str(s.rq, "path");
    FileF* f = nullptr;
    for (auto& x : w.files) {
        if (x.path == path && x.end_step == kNever) {
            f = &x;
        }
    }
    if (!f) {
        w.files.push_back(w.new_file(path, 0));
        f = &w.files.back();
    }
    Facts::take_info(*f, s.rp, s.i);
    if (!f->written) {
        f->size = u64(s.rp, "size");
    }
}

// Several files written concurrently in one step; the reply carries each file's file_info
// facts (inode, nonce, extents) taken after all of them were written.
void on_write_files(Facts& w, const Step& s) {
    if (!s.ok) {
        return;
    }
    const json& facts = at(s.rp, "files");
    for (const auto& e : at(s.rq, "files")) {
        const std::string path = str(e, "path");
        w.end_file(path, s.i);
        FileF f = w.new_file(path, s.i);
        f.written = true;
        f.seed = u64(e, "seed");
        f.size = u64(e, "size");
        for (const auto& fi : facts) {
            if (str(fi, "path") == path) {
                Facts::take_info(f, fi, s.i);
                f.size = u64(fi, "size", f.size);
            }
        }
        w.files.push_back(std::move(f));
    }
}

void on_remove_file(Facts& w, const Step& s) {
    if (s.ok) {
        w.end_file(str(s.rq, "path"), s.i);
    }
}

using Handler = void (*)(Facts&, const Step&);

const std::map<guest_ops::Op, Handler>& handlers() {
    using guest_ops::Op;
    static const std::map<Op, Handler> m = {
        {Op::dm_create, on_dm_create},
        {Op::dm_load, on_dm_load},
        {Op::dm_resume, on_dm_resume},
        {Op::dm_clear, on_dm_clear},
        {Op::dm_remove, on_dm_remove},
        {Op::write_dev, on_write_dev},
        {Op::disks, on_disks},
        {Op::mkfs, on_mkfs},
        {Op::mount, on_mount},
        {Op::umount, on_umount},
        {Op::add_key, on_add_key},
        {Op::import_wrapped_key, on_import_wrapped_key},
        {Op::generate_wrapped_key, on_generate_wrapped_key},
        {Op::prepare_wrapped_key, on_prepare_wrapped_key},
        {Op::add_wrapped_key, on_add_wrapped_key},
        {Op::remove_key, on_remove_key},
        {Op::set_policy, on_set_policy},
        {Op::write_file, on_write_file},
        {Op::file_info, on_file_info},
        {Op::write_files, on_write_files},
        {Op::remove_file, on_remove_file},
    };
    return m;
}

} // namespace

namespace {

bool is_hex64(const json& v) {
    if (!v.is_string()) {
        return false;
    }
    const auto& s = v.get_ref<const std::string&>();
    return s.size() == 64 && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

// Raw master keys of hardware-wrapped keys: every 32-byte value (64 hex digits) of the
// scenario's vars and of the steps' requests (run.json, after substitution).
void collect_hw_masters(Facts& w) {
    auto add = [&](const json& v, std::string source) {
        if (!is_hex64(v)) {
            return;
        }
        Bytes k = models::from_hex(v.get<std::string>());
        for (const auto& h : w.hw_masters) {
            if (h.key == k) {
                return;
            }
        }
        const std::string fp = models::key_fingerprint(k);
        const std::string ifp =
            models::key_fingerprint(models::hw_wrapped::inline_encryption_key(k));
        w.hw_masters.push_back({std::move(k), std::move(source), fp, ifp});
    };
    if (const json& vars = at(w.in.scenario, "vars"); vars.is_object()) {
        for (const auto& [name, v] : vars.items()) {
            add(v, "scenario var " + name);
        }
    }
    const json& steps = at(w.in.run, "steps");
    for (std::size_t i = 1; i <= steps.size(); ++i) {
        const json& st = steps[i - 1];
        const json& rq = at(st, "request");
        if (st.contains("skipped") || !rq.is_object()) {
            continue;
        }
        for (const auto& [field, v] : rq.items()) {
            add(v, w.step_name(i) + " " + field);
        }
    }
}

} // namespace

Facts gather_facts(const Inputs& in, const dm::KernelRules& kv) {
    Facts w(in, kv);
    load_disks(w);
    collect_hw_masters(w);
    w.record_sysfs(0, at(at(in.run, "boot_disks"), "disks"));
    const json& steps = at(in.run, "steps");
    for (std::size_t i = 1; i <= steps.size(); ++i) {
        const json& st = steps[i - 1];
        const std::string op = str(st, "op");
        const auto known = guest_ops::parse(op);
        if (!known && !guest_ops::is_host_op(op)) {
            throw std::invalid_argument("run.json step " + std::to_string(i) + ": unknown op '" +
                                        op + "'");
        }
        if (op == "reboot" && !st.contains("skipped")) {
            if (const json& m = at(at(st, "reply"), "disk_map"); m.is_object()) {
                for (auto& [name, d] : w.disks) {
                    bind_disk(d, m);
                }
            }
        }
        if (st.contains("skipped") || !known) {
            continue; // not run on this kernel (the step's "kernel" condition), or a host op
        }
        auto h = handlers().find(*known);
        if (h == handlers().end()) {
            continue; // no fact the checker uses
        }
        const json& rp = at(st, "reply");
        h->second(w, Step{i, at(st, "request"), rp, rp.is_object() && rp.value("ok", false),
                          str(st, "label")});
    }
    return w;
}

} // namespace icemu::checker::detail
