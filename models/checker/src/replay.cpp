// icemu-check, stage 3: each controller's event log, replayed once. One slot table per
// controller, ufshci::LogReplay's, is what every check reads (the io's slot, the per-step
// snapshots for key removals, the keys held at a wipe); keyslots::TrafficChecker observes the
// same events for the Linux keyslot policy (duplicate keys, evicts of empty slots, I/O on a
// slot before its reprogram after a wipe, missing reprograms). Every successful io is matched
// against the file pieces on its LU. Key-manager events are paired with the program events they
// must be directly followed by, and every wrapped program is kept with its master key's
// fingerprint for invariant 10.
#include "run.hpp"

#include <algorithm>

#include "icemu/models/hw_wrapped.hpp"
#include "icemu/models/keyslots.hpp"
#include "icemu/models/ufshci_crypto.hpp"

namespace icemu::checker::detail {

namespace {

namespace uc = models::ufshci;
namespace ks = models::keyslots;

std::vector<std::uint64_t> marks_of(const Inputs& in, const std::string& ctrl) {
    std::vector<std::uint64_t> marks;
    for (const auto& sn : at(in.run, "snapshots")) {
        const json& b = at(sn, "event_log_bytes");
        if (!b.is_object() || !b.contains(ctrl)) {
            return {};
        }
        marks.push_back(b[ctrl].get<std::uint64_t>());
    }
    return marks;
}

// Inline keys the kernel holds as more than one blk_crypto_key: a hardware-wrapped master key
// under both IV_INO_LBLK_64 and IV_INO_LBLK_32 policies (or two data unit sizes). fscrypt
// prepares one blk_crypto_key per key node and, for a wrapped key, every one from the same
// ephemeral blob (fscrypt_prepare_inline_crypt_key with is_hw_wrapped), so all carry the same
// inline key and may be in as many slots at once. A raw key derives a different key per
// flavour (HKDF info with the mode and fs UUID): no allowance.
std::map<std::string, unsigned> wrapped_copies(const Facts& w) {
    std::map<std::string, unsigned> out;
    for (const auto& mk : w.mks) {
        if (!mk.hw_wrapped || mk.key.empty()) {
            continue;
        }
        // fscrypt's per-mode key nodes are keyed by (HKDF context, mode, data unit bits)
        // (7.3.4 fs/crypto/keysetup.c setup_per_mode_enc_key): one blk_crypto_key per
        // IV_INO_LBLK_* flavour and data unit size.
        std::set<std::pair<unsigned, unsigned>> keys;
        for (const Pol& p : w.pols) {
            if (p.identifier != mk.identifier || (p.flags & 0x18) == 0) {
                continue;
            }
            unsigned du = p.log2_du;
            for (const Fs& f : w.fss) {
                if (du == 0 && p.dir.rfind(f.mnt + "/", 0) == 0) {
                    du = f.blkbits;
                }
            }
            keys.emplace(p.flags & 0x18, du ? du : 12);
        }
        const auto flavours = static_cast<unsigned>(keys.size());
        if (flavours > 1) {
            const std::string fp =
                models::key_fingerprint(models::hw_wrapped::inline_encryption_key(mk.key));
            out[fp] = std::max(out[fp], flavours);
        }
    }
    return out;
}

// The replay of one controller's log.
class CtrlReplay {
public:
    CtrlReplay(const Facts& w, Models& m, const std::set<std::size_t>& checkpoints,
               const std::string& ctrl, CtrlResult& r)
        : w_(w), m_(m), checkpoints_(checkpoints), ctrl_(ctrl), r_(r) {}
    void run(const LogInput& log);

private:
    void handle_io(const ev::Event& e, const ev::Io& io, std::size_t step, const uc::LogReplay& rp);

    const Facts& w_;
    Models& m_;
    const std::set<std::size_t>& checkpoints_;
    const std::string& ctrl_;
    CtrlResult& r_;
    std::map<unsigned, const std::vector<std::size_t>*> lu_cache_; ///< lun -> pieces on it
};

void CtrlReplay::handle_io(const ev::Event& e, const ev::Io& io, std::size_t step,
                           const uc::LogReplay& rp) {
    const bool good = io.ocs == 0 && io.error.empty();
    // Built only when a finding needs it (this is the replay's hot path).
    auto where = [&] {
        return ctrl_ + " seq " + std::to_string(e.seq) + " (" + w_.step_name(step) + ") " +
               std::string(ev::to_string(io.op)) + " lun " + std::to_string(io.lun) + " lba " +
               std::to_string(io.lba) + "+" + std::to_string(io.blocks);
    };
    if (io.ce && good && io.slot >= 0) {
        ++r_.ce_ok;
        const auto& v = rp.slot(static_cast<unsigned>(io.slot));
        if (!v.armed || !v.valid) {
            r_.key_fails.add(where() + ": crypto I/O succeeded on slot " + std::to_string(io.slot) +
                             ", which the register model says is not armed with a valid config");
        } else if (v.key_fp != io.key_fp) {
            r_.key_fails.add(where() + ": used key " + short_fp(io.key_fp) + " but slot " +
                             std::to_string(io.slot) + " was last programmed with " +
                             short_fp(v.key_fp));
        }
    }
    if (!good) {
        return;
    }
    bool modelled = false;
    bool wrap_judged = false; ///< this request was checked against the 32-bit DUN wrap
    // Pieces of files on this LU (cached per controller: the key is (ctrl_, lun)).
    auto lu = lu_cache_.find(io.lun);
    if (lu == lu_cache_.end()) {
        auto f = m_.pieces_by_lu.find({ctrl_, io.lun});
        lu = lu_cache_.emplace(io.lun, f == m_.pieces_by_lu.end() ? nullptr : &f->second).first;
    }
    if (lu->second) {
        const std::vector<std::size_t>& lu_pieces = *lu->second;
        const std::uint64_t bs = io.block_size ? io.block_size : 4096;
        const std::uint64_t s0 = io.lba * bs, s1 = s0 + io.blocks * bs;
        for (std::size_t idx : lu_pieces) {
            const Piece& p = m_.pieces[idx];
            FileModel& fm = m_.fms[p.file];
            if (r_.have_marks && (step < fm.from || step >= fm.to)) {
                continue;
            }
            const std::uint64_t a = std::max(s0, p.dev_off), b = std::min(s1, p.dev_off + p.len);
            if (a >= b) {
                continue;
            }
            const bool write = io.op == ev::IoOp::write;
            if (write) {
                fm.any_writes[ctrl_] += b - a;
            }
            if (!io.ce) {
                if (write) {
                    fm.plain_writes[ctrl_] += b - a;
                    if (fm.encrypted && fm.native_on(ctrl_)) {
                        r_.plain_fails.add(where() + ": CE=0 write of " + std::to_string(b - a) +
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
                fm.ce_writes[ctrl_] += b - a;
            }
            if (fm.encrypted && fm.decided && !fm.native_on(ctrl_)) {
                r_.fallback_fails.add(
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
                r_.key_fails.add(where() + ": " + fm.path + " (" + fm.policy_name +
                                 ") was transformed with key " + short_fp(io.key_fp) +
                                 ", the fscrypt model expects " + fm.key_fp);
            }
            if ((fm.on_dm || fm.multi_dev) && !r_.first_program.count(fm.key_fp)) {
                r_.dm_key_fails.add(
                    where() + ": I/O for " + fm.path +
                    (fm.on_dm ? " through the dm device" : " of the multi-device filesystem") +
                    ", but " + ctrl_ + " was never programmed with its key " + fm.key_fp);
            }
            const std::uint64_t du = io.dusize;
            if (fm.policy == fc::Policy::iv_ino_lblk_32 && !wrap_judged && du != 0) {
                // fs/crypto/block.c fscrypt_limit_io_blocks / fscrypt_mergeable_bio: a bio
                // never spans the wrap of a 32-bit DUN from 0xffffffff to 0, as the device
                // would increment past it (block/blk-crypto.c bio_crypt_dun_is_contiguous).
                wrap_judged = true;
                ++r_.wrap_checked;
                const std::uint64_t units = (s1 - s0) / du;
                const std::uint64_t last = io.dun + (units ? units - 1 : 0);
                r_.wrap_ends += last == 0xffffffffull;
                r_.wrap_starts += io.dun == 0;
                if (io.dun <= 0xffffffffull && last > 0xffffffffull) {
                    r_.wrap_fails.add(
                        where() + ": " + fm.path + " (" + fm.policy_name + ") request of " +
                        std::to_string(units) + " data units from DUN " + hex_u64(io.dun) +
                        " crosses the 32-bit DUN wrap (its last unit would be " + hex_u64(last) +
                        ", the filesystem's is " + hex_u64(last & 0xffffffffull) + ")");
                }
            }
            if (du != (1ull << fm.du_bits)) {
                r_.dun_fails.add(where() + ": data unit " + std::to_string(du) +
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
                ++r_.dun_checked;
                if (got != want) {
                    const auto diff = static_cast<std::int64_t>(got - want);
                    r_.dun_fails.add(where() + ": data unit at " + fm.path + " offset " +
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
        ++r_.ce_model;
        return;
    }
    // No reported extents cover this io: check the key against the keys the models derive, and
    // for IV_INO_LBLK_64 the DUN's inode field (bits 63..32) against the reported inodes.
    auto d = m_.derivable.find(io.key_fp);
    if (d != m_.derivable.end()) {
        ++r_.ce_keyset;
        if (d->second.second == fc::Policy::iv_ino_lblk_64 && !m_.lblk64_inos.empty()) {
            ++r_.dun_ino_checked;
            if (!m_.lblk64_inos.count(io.dun >> 32)) {
                r_.dun_fails.add(where() + ": DUN " + hex_u64(io.dun) + " with " + d->second.first +
                                 ": inode field " + std::to_string(io.dun >> 32) +
                                 " is not the inode of any file under an IV_INO_LBLK_64 policy");
            }
        }
    } else if (m_.only_lblk && !m_.derivable.empty()) {
        ++r_.ce_keyset;
        r_.key_fails.add(where() + ": key " + short_fp(io.key_fp) +
                         " is none of the keys the fscrypt model derives from the added master "
                         "keys (every policy is IV_INO_LBLK_*)");
    } else {
        ++r_.ce_consistency;
    }
}

void CtrlReplay::run(const LogInput& log) {
    if (!log.error.empty() || log.events.empty()) {
        return;
    }
    const auto* rz = std::get_if<ev::Realize>(&log.events.front().body);
    if (!rz) {
        return;
    }
    r_.replayed = true;
    // event_log_bytes[i]: the log's size after step i, so the event at byte offset o happened
    // during step #{marks <= o} (0 = boot).
    const std::vector<std::uint64_t> marks = marks_of(w_.in, ctrl_);
    r_.have_marks = !marks.empty();
    auto mark = marks.begin();
    std::size_t step = 0;
    uc::LogReplay rp(*rz);
    ks::TrafficChecker tc(rz->slots);
    for (const auto& [fp, n] : wrapped_copies(w_)) {
        tc.allow_copies(fp, n);
    }
    auto cp = checkpoints_.begin();
    // Host `reboot` steps (QMP system_reset): a reset of every controller. The device logs a
    // `wipe` (reason reset) only when a slot was armed, so the reset is applied at the first
    // event of the step (after that wipe, if it is one): slots, key-manager pairing and the
    // keyslot policy's init phase start over.
    std::set<std::size_t> reboots;
    const json& steps = at(w_.in.run, "steps");
    for (std::size_t i = 1; i <= steps.size(); ++i) {
        if (str(steps[i - 1], "op") == "reboot" && !steps[i - 1].contains("skipped")) {
            reboots.insert(i);
        }
    }
    auto rb = reboots.begin();
    bool reset_due = false;
    // A successful km PROGRAM whose wrapped program event must come next (seq, event).
    std::optional<std::pair<std::uint64_t, ev::Km>> pending;
    auto km_fail = [&](std::uint64_t seq, std::size_t at_step, const std::string& what) {
        r_.km_fails.add(ctrl_ + " seq " + std::to_string(seq) + " (" + w_.step_name(at_step) +
                        "): " + what);
    };
    auto pending_what = [&] {
        return "the key manager's PROGRAM of slot " +
               std::to_string(pending->second.slot.value_or(0)) + " (seq " +
               std::to_string(pending->first) + ") succeeded";
    };
    auto capture = [&](std::size_t s) {
        auto& m = r_.slots_at[s];
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
        while (rb != reboots.end() && *rb <= step) {
            reset_due = true;
            ++rb;
        }
        const auto* wipe = std::get_if<ev::Wipe>(&e.body);
        const bool reset_wipe = wipe && wipe->reason == ev::WipeReason::reset;
        auto machine_reset = [&] {
            rp.reset();
            tc.reset();
            if (pending) {
                km_fail(pending->first, step,
                        pending_what() + " but the machine was reset before its program event");
                pending.reset();
            }
            reset_due = false;
        };
        if (reset_due && !reset_wipe) {
            machine_reset();
        }
        if (const auto* w = std::get_if<ev::Wipe>(&e.body)) {
            bool held = false;
            for (unsigned s = 0; s < rz->slots && !held; ++s) {
                const auto& v = rp.slot(s);
                held = v.armed && v.valid && !v.key_fp.empty();
            }
            r_.wipes_with_keys += held || w->armed > 0;
        } else if (const auto* p = std::get_if<ev::Program>(&e.body); p && p->ok) {
            r_.first_program.emplace(p->key_fp, e.seq);
        }
        if (const auto* km = std::get_if<ev::Km>(&e.body)) {
            ++r_.km_ops;
            if (pending) {
                km_fail(e.seq, step,
                        pending_what() + " but the next event is another km event, not "
                                         "the slot's wrapped program");
                pending.reset();
            }
            if (km->ok && km->op == ev::KmOp::program) {
                ++r_.km_programs;
                pending.emplace(e.seq, *km);
            } else if (km->ok && km->op == ev::KmOp::generate) {
                r_.generated.insert(km->master_fp);
            }
        } else if (const auto* p = std::get_if<ev::Program>(&e.body); p && p->is_wrapped()) {
            const std::string slot = std::to_string(p->slot);
            if (!pending) {
                km_fail(e.seq, step,
                        "wrapped program of slot " + slot +
                            " without a successful key-manager PROGRAM directly before it");
            } else if (pending->second.slot != p->slot) {
                km_fail(e.seq, step, pending_what() + " but the next program is of slot " + slot);
            } else if (!p->ok) {
                km_fail(e.seq, step, pending_what() + " but its program event says ok=false");
            }
            r_.wrapped.push_back({e.seq, step, p->slot, p->key_fp,
                                  pending ? pending->second.master_fp.str() : std::string()});
            pending.reset();
        } else if (pending) {
            km_fail(e.seq, step,
                    pending_what() + " but the next event is " +
                        (std::holds_alternative<ev::Program>(e.body)
                             ? std::string("a raw-key program (no \"wrapped\": true)")
                             : "\"" + std::string(ev::event_name(e.body)) + "\"") +
                        ", not the slot's wrapped program");
            pending.reset();
        }
        if (k > 0) {
            rp.apply(e); // the replay was constructed from the realize event
        }
        const std::size_t before = tc.findings().size();
        tc.observe(e);
        // A CE io on a slot the wipe emptied, before its reprogram: reported with its step.
        for (std::size_t f = before; f < tc.findings().size(); ++f) {
            const auto& x = tc.findings()[f];
            if (x.kind == ks::Finding::Kind::io_before_reprogram) {
                r_.reset_fails.add(ctrl_ + " seq " + std::to_string(x.seq) + " (" +
                                   w_.step_name(step) + "): " + x.detail);
            }
        }
        if (const auto* io = std::get_if<ev::Io>(&e.body)) {
            handle_io(e, *io, step, rp);
        }
        if (reset_due && reset_wipe) {
            machine_reset(); // the reset's own wipe was replayed first
        }
    }
    while (cp != checkpoints_.end()) {
        capture(*cp++);
    }
    if (pending) {
        km_fail(pending->first, step,
                pending_what() + " but the log ends before its program event");
    }
    rp.finish();
    for (const auto& m : rp.mismatches()) {
        r_.log_fails.add(ctrl_ + " seq " + std::to_string(m.seq) + ": " + m.what);
    }
    for (const auto& f : tc.findings()) {
        const std::string d = ctrl_ + " seq " + std::to_string(f.seq) + ": " +
                              std::string(ks::to_string(f.kind)) + ": " + f.detail;
        switch (f.kind) {
        case ks::Finding::Kind::evict_of_empty_slot:
            r_.log_fails.add(d);
            break;
        case ks::Finding::Kind::duplicate_key:
            r_.stale_fails.add(d);
            break;
        case ks::Finding::Kind::missing_reprogram:
            r_.reset_fails.add(d);
            break;
        case ks::Finding::Kind::io_before_reprogram:
            break; // reported above, with its step
        case ks::Finding::Kind::io_on_unprogrammed_slot:
        case ks::Finding::Kind::io_key_mismatch:
            r_.key_fails.add(d);
            break;
        }
    }
}

} // namespace

Results replay_logs(const Facts& w, Models& m) {
    std::set<std::size_t> checkpoints;
    for (const auto& rc : w.removals) {
        checkpoints.insert(rc.step);
    }
    for (const auto& rc : w.ic_removals) {
        checkpoints.insert(rc.step);
    }
    Results res;
    for (const auto& entry : w.in.logs) {
        const LogInput& log = entry.second;
        CtrlReplay(w, m, checkpoints, log.ctrl, res[log.ctrl]).run(log);
    }
    return res;
}

} // namespace icemu::checker::detail
