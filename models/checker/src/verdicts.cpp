// icemu-check, stage 4: the invariants. One judge function per invariant and the invariant
// table (number, name, title, kernel, levels, when not applicable, judge) that check() runs, the
// runner's TAP names come from and docs/checker.md's table is tested against.
#include "run.hpp"

#include "icemu/models/hw_wrapped.hpp"
#include "icemu/models/xts.hpp"
#include "icemu/pattern.hpp"

#include <fstream>
#include <sstream>

namespace icemu::checker::detail {

namespace {

const CtrlResult& result(const Run& run, const std::string& ctrl) {
    static const CtrlResult none;
    auto it = run.res.find(ctrl);
    return it == run.res.end() ? none : it->second;
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

Verdict judge_logs(const Run& run) {
    Verdict v;
    if (run.in.logs.empty()) {
        v.reason = "no event log was given";
        return v;
    }
    v.level = "model";
    std::uint64_t n = 0, events = 0;
    for (const auto& [ctrl, log] : run.in.logs) {
        if (!log.error.empty()) {
            v.details.push_back(log.error);
            ++n;
            continue;
        }
        if (log.torn_tail) {
            v.details.push_back(ctrl + ": torn last line ignored");
        }
        events += log.events.size();
        const auto& r = result(run, ctrl);
        n += r.log_fails.count;
        take(v, r.log_fails, run.opt.max_details);
    }
    v.status = n ? Status::fail : Status::pass;
    v.reason = n ? std::to_string(n) + " problem(s) in the logs"
                 : std::to_string(run.in.logs.size()) + " log(s), " + std::to_string(events) +
                       " events: LogReplay and the keyslot traffic policy found nothing";
    return v;
}

Verdict judge_keys_armed(const Run& run) {
    Verdict v;
    std::uint64_t ce = 0, model = 0, keyset = 0, cons = 0,
                  fails = run.facts.identifier_fails.size();
    for (const auto& s : run.facts.identifier_fails) {
        v.details.push_back(s);
    }
    for (const auto& [ctrl, r] : run.res) {
        ce += r.ce_ok;
        model += r.ce_model;
        keyset += r.ce_keyset;
        cons += r.ce_consistency;
        fails += r.key_fails.count;
        take(v, r.key_fails, run.opt.max_details);
    }
    if (ce == 0 && run.facts.identifier_checks.empty() && fails == 0) {
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
      << run.facts.identifier_checks.size() + run.facts.identifier_fails.size()
      << " key identifier(s) checked against HKDF";
    if (fails) {
        o << "; " << fails << " failure(s)";
    }
    v.reason = o.str();
    for (const auto& fm : run.models.fms) {
        if (fm.encrypted && !fm.predictable && v.details.size() < run.opt.max_details) {
            v.details.push_back("no model prediction for " + fm.path + ": " + fm.why_not);
        }
    }
    return v;
}

Verdict judge_dun(const Run& run) {
    Verdict v;
    std::uint64_t checked = 0, fails = 0, ino_checked = 0;
    std::uint64_t wrap_checked = 0, wrap_ends = 0, wrap_starts = 0;
    for (const auto& [ctrl, r] : run.res) {
        checked += r.dun_checked;
        ino_checked += r.dun_ino_checked;
        fails += r.dun_fails.count + r.wrap_fails.count;
        wrap_checked += r.wrap_checked;
        wrap_ends += r.wrap_ends;
        wrap_starts += r.wrap_starts;
        take(v, r.wrap_fails, run.opt.max_details);
        take(v, r.dun_fails, run.opt.max_details);
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
                              : "") +
                 (wrap_checked ? "; " + std::to_string(wrap_checked) +
                                     " IV_INO_LBLK_32 request(s) checked for crossing the "
                                     "32-bit DUN wrap (" +
                                     std::to_string(wrap_ends) + " ended at 0xffffffff, " +
                                     std::to_string(wrap_starts) + " started at 0)"
                               : ""),
             "mismatch(es)");
    return v;
}

Verdict judge_dm_key_fanin(const Run& run) {
    Verdict v;
    std::uint64_t fails = 0, files = 0;
    for (const auto& [ctrl, r] : run.res) {
        fails += r.dm_key_fails.count;
        take(v, r.dm_key_fails, run.opt.max_details);
    }
    for (const auto& fm : run.models.fms) {
        if (!(fm.on_dm || fm.multi_dev) || !fm.encrypted || fm.npieces == 0 || !fm.f->written) {
            continue;
        }
        ++files;
        std::string spread;
        for (const auto& [dev, bytes] : fm.bytes_on_ctrl) {
            spread += (spread.empty() ? "" : ", ") + dev + " " + std::to_string(bytes) + " B";
            if (!fm.native_on(dev) || !run.in.logs.count(dev) || !result(run, dev).replayed ||
                !result(run, dev).have_marks) {
                continue;
            }
            auto w = fm.any_writes.find(dev);
            if (w == fm.any_writes.end() || w->second == 0) {
                ++fails;
                v.details.push_back(dev + " holds " + std::to_string(bytes) + " bytes of " +
                                    fm.path + " but received no write for them in " +
                                    run.facts.step_name(fm.from));
            } else if (fm.predictable && !result(run, dev).first_program.count(fm.key_fp)) {
                ++fails;
                v.details.push_back(dev + " received I/O for " + fm.path +
                                    " but was never "
                                    "programmed with its key " +
                                    fm.key_fp);
            }
        }
        if (v.details.size() < run.opt.max_details) {
            v.details.push_back(fm.path + " (" + fm.impl() + ", key " + short_fp(fm.key_fp) +
                                "): " + spread);
        }
    }
    if (files == 0 && fails == 0) {
        // Consistency level: any dm device at all?
        bool dm_fs = false;
        for (const auto& f : run.facts.fss) {
            dm_fs = dm_fs || run.facts.resolve(f.dev).value_or("").rfind("dm:", 0) == 0 ||
                    f.devs.size() > 1;
        }
        if (!dm_fs) {
            v.reason = "no filesystem on a dm device or on several devices";
            return v;
        }
        v.level = "consistency";
        std::uint64_t k = 0;
        for (const auto& [ctrl, r] : run.res) {
            k += r.key_fails.count;
        }
        v.status = k ? Status::fail : Status::pass;
        v.reason = "no file facts on the dm filesystem; every crypto I/O's key was checked against "
                   "the programs of its own controller (see invariant 1)";
        return v;
    }
    conclude(v, fails,
             std::to_string(files) +
                 " encrypted file(s) on dm devices or multi-device filesystems: each underlying "
                 "controller holding part of one received its writes with "
                 "the key programmed",
             "failure(s)");
    return v;
}

std::map<std::string, std::string> keys_for(const Run& run, std::size_t k) {
    const MasterKey& mk = run.facts.mks[k];
    std::map<std::string, std::string> out;
    const std::string id = mk.identifier.substr(0, 8);
    if (mk.hw_wrapped) {
        // Every file under it uses the inline encryption key (whatever the fs UUID).
        if (!mk.key.empty()) {
            out[models::key_fingerprint(models::hw_wrapped::inline_encryption_key(mk.key))] =
                "inline encryption key of hardware-wrapped master key " + id;
        }
        return out;
    }
    for (const auto& f : run.facts.fss) {
        // A v1 key (added by descriptor) serves v1 policies only: no IV_INO_LBLK_* keys.
        if (mk.v1 || f.mnt != mk.mnt || f.uuid.size() != 16 || f.mount_step > mk.add_step ||
            f.umount_step < mk.add_step) {
            continue;
        }
        out[models::key_fingerprint(fc::iv_ino_lblk_64_key(mk.key, f.uuid))] =
            "IV_INO_LBLK_64 key of master key " + id;
        out[models::key_fingerprint(fc::iv_ino_lblk_32_key(mk.key, f.uuid))] =
            "IV_INO_LBLK_32 key of master key " + id;
    }
    for (const auto& fm : run.models.fms) {
        if (fm.mk == &mk && fm.predictable) {
            out.emplace(fm.key_fp, "key of " + fm.path);
        }
    }
    return out;
}

// After the removal at `step` (`what`): every armed slot of any controller holding one of
// `keys` (fp -> which key), in the replayed slot table at that step and in the QMP snapshot
// after it. Each (controller, slot, source) is one detail; returns how many.
std::uint64_t stale_slots(const Run& run, std::size_t step, const std::string& what,
                          const std::map<std::string, std::string>& keys, Verdict& v) {
    std::uint64_t fails = 0;
    std::set<std::string> seen;
    auto report = [&](const std::string& ctrl, unsigned slot, const std::string& fp,
                      const char* src) {
        if (!seen.insert(ctrl + "/" + std::to_string(slot) + "/" + src).second) {
            return;
        }
        ++fails;
        v.details.push_back("after " + what + ": " + ctrl + " slot " + std::to_string(slot) +
                            " still holds " + fp + " (" + keys.at(fp) + ") [" + src + "]");
    };
    for (const auto& [ctrl, r] : run.res) {
        auto it = r.slots_at.find(step);
        if (r.have_marks && it != r.slots_at.end()) {
            for (const auto& [slot, fp] : it->second) {
                if (keys.count(fp)) {
                    report(ctrl, slot, fp, "event log");
                }
            }
        }
    }
    const json& snaps = at(run.in.run, "snapshots");
    if (step < snaps.size()) {
        for (const auto& [ctrl, st] : at(snaps[step], "crypto_state").items()) {
            for (const auto& sl : at(st, "slots")) {
                const std::string fp = str(sl, "key_fp");
                if (sl.value("armed", false) && keys.count(fp)) {
                    report(ctrl, static_cast<unsigned>(u64(sl, "slot")), fp, "QMP snapshot");
                }
            }
        }
    }
    return fails;
}

Verdict judge_keys_evicted(const Run& run) {
    Verdict v;
    std::uint64_t fails = 0, checked = 0;
    for (const auto& [ctrl, r] : run.res) {
        fails += r.stale_fails.count;
        take(v, r.stale_fails, run.opt.max_details);
    }
    for (const auto& rc : run.facts.removals) {
        if (rc.busy) {
            v.details.push_back(rc.what + ": FILES_BUSY, the key is only partly removed; "
                                          "not checked");
            continue;
        }
        std::map<std::string, std::string> keys;
        for (std::size_t k : rc.keys) {
            auto m = keys_for(run, k);
            keys.insert(m.begin(), m.end());
        }
        if (keys.empty()) {
            continue;
        }
        ++checked;
        fails += stale_slots(run, rc.step, rc.what, keys, v);
        if (v.details.size() < run.opt.max_details) {
            v.details.push_back(rc.what + ": " + std::to_string(keys.size()) +
                                " derived key(s) checked on every controller");
        }
    }
    for (const auto& rc : run.facts.ic_removals) {
        ++checked;
        fails += stale_slots(run, rc.step, rc.what, rc.keys, v);
        if (v.details.size() < run.opt.max_details) {
            v.details.push_back(rc.what + ": dm-inlinecrypt key(s) checked on every controller");
        }
    }
    if (checked == 0 && fails == 0) {
        v.reason = run.facts.removals.empty()
                       ? "no remove_key or umount step"
                       : "no key to check (no master key added on those mounts)";
        return v;
    }
    conclude(v, fails,
             std::to_string(checked) + " removal(s) checked against the event-log slot table and "
                                       "the QMP snapshot",
             "stale slot(s)");
    return v;
}

Verdict judge_dm_sysfs(const Run& run) {
    Verdict v;
    std::uint64_t fails = 0, dmn = 0;
    for (const auto& c : run.facts.sysfs) {
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
        const std::string head = run.facts.step_name(c.step) + " " + c.what + " " + c.disk;
        if (!why.str().empty()) {
            ++fails;
            v.details.push_back(head + ": " + why.str());
        } else if (v.details.size() < run.opt.max_details) {
            v.details.push_back(head + ": " + (w.present ? "matches" : "absent, as predicted"));
        }
    }
    if (dmn == 0 && fails == 0) {
        v.reason = "no dm device in any disks report";
        return v;
    }
    conclude(v, fails,
             std::to_string(run.facts.sysfs.size()) + " queue/crypto reading(s) (" +
                 std::to_string(dmn) + " of dm devices) compared with the model",
             "mismatch(es)");
    return v;
}

Verdict judge_dm_reload_rule(const Run& run) {
    Verdict v;
    std::uint64_t fails = 0, reloads = 0;
    for (const auto& l : run.facts.loads) {
        reloads += l.reload;
        const std::string head =
            run.facts.step_name(l.step) + " " + l.name + (l.reload ? " (reload)" : "");
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
        } else if (v.details.size() < run.opt.max_details) {
            v.details.push_back(head + ": " + (l.ok ? "accepted" : "rejected with EINVAL") +
                                ", as the model predicts");
        }
    }
    if (reloads == 0 && fails == 0) {
        v.reason = run.facts.loads.empty() ? "no dm_load step" : "no reload of a loaded dm device";
        return v;
    }
    conclude(v, fails,
             std::to_string(run.facts.loads.size()) + " dm_load(s), " + std::to_string(reloads) +
                 " reload(s) compared with the model's reload rule",
             "disagreement(s)");
    return v;
}

Verdict judge_medium(const Run& run) {
    Verdict v;
    std::uint64_t fails = 0, plain_checked = 0;
    std::uint64_t fallback_ce = 0;
    for (const auto& [ctrl, r] : run.res) {
        fails += r.plain_fails.count + r.fallback_fails.count;
        fallback_ce += r.fallback_fails.count;
        take(v, r.plain_fails, run.opt.max_details);
        take(v, r.fallback_fails, run.opt.max_details);
    }
    for (const auto& fm : run.models.fms) {
        plain_checked += fm.encrypted && fm.npieces != 0;
    }
    // Medium comparison.
    std::uint64_t units = 0, bad_units = 0, plain_units = 0, budget = run.opt.max_media_bytes;
    std::uint64_t plain_checked_units = 0; ///< units of non-modelled modes checked for plaintext
    std::size_t files = 0;
    std::vector<std::string> skipped;
    if (run.opt.check_media) {
        for (const auto& fm : run.models.fms) {
            if (!fm.encrypted || fm.npieces == 0 || !fm.f->written) {
                continue;
            }
            if (fm.to != kNever) {
                skipped.push_back(fm.path + ": removed or rewritten before the end");
                continue;
            }
            if (!fm.predictable && fm.contents != 1) {
                // A contents mode the models do not encrypt (CBC-ESSIV, Adiantum): whatever
                // encrypted it (blk-crypto-fallback), no whole data unit may hold the plaintext.
                std::uint64_t n = 0, plain = 0, first = kNever;
                const std::uint64_t du = 1ull << fm.du_bits;
                for (const auto& p : run.models.pieces) {
                    auto img = run.in.images.find(p.disk);
                    if (&run.models.fms[p.file] != &fm || img == run.in.images.end()) {
                        continue;
                    }
                    std::ifstream f(img->second, std::ios::binary);
                    Bytes medium(du), pt(du);
                    for (std::uint64_t o = 0; f && o + du <= p.len && budget >= du; o += du) {
                        const std::uint64_t foff = p.file_off + o;
                        if (foff + du > fm.f->size || foff % du) {
                            continue;
                        }
                        f.seekg(static_cast<std::streamoff>(p.dev_off + o));
                        f.read(reinterpret_cast<char*>(medium.data()),
                               static_cast<std::streamsize>(du));
                        if (!f) {
                            break;
                        }
                        budget -= du;
                        pattern::fill(fm.f->seed, foff, pt.data(), pt.size());
                        ++n;
                        if (medium == pt) {
                            ++plain;
                            first = std::min(first, foff);
                        }
                    }
                }
                plain_checked_units += n;
                if (plain) {
                    ++fails;
                    v.details.push_back(fm.path + " (" + fm.policy_name +
                                        "): " + std::to_string(plain) + " of " + std::to_string(n) +
                                        " data unit(s) on the medium hold the PLAINTEXT, from "
                                        "file offset " +
                                        std::to_string(first));
                } else if (n) {
                    skipped.push_back(fm.path + ": " + fm.why_not + " (" + std::to_string(n) +
                                      " data unit(s) checked: none holds the plaintext)");
                } else {
                    skipped.push_back(fm.path + ": " + fm.why_not);
                }
                continue;
            }
            if (!fm.predictable) {
                skipped.push_back(fm.path + ": " + fm.why_not);
                continue;
            }
            bool counted = false;
            models::XtsCipher cipher(fm.key);
            const std::uint64_t du = 1ull << fm.du_bits;
            for (const auto& p : run.models.pieces) {
                if (&run.models.fms[p.file] != &fm) {
                    continue;
                }
                auto img = run.in.images.find(p.disk);
                if (img == run.in.images.end()) {
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
        if (v.details.size() < run.opt.max_details) {
            v.details.push_back("medium not compared for " + s);
        }
    }
    if (plain_checked == 0 && units == 0 && plain_checked_units == 0 && fails == 0) {
        v.reason = "no encrypted file with FIEMAP extents was reported";
        return v;
    }
    std::size_t by_log = 0;
    for (const auto& fm : run.models.fms) {
        by_log += fm.placed_by_log;
    }
    v.status = fails ? Status::fail : Status::pass;
    v.level = units ? "model (medium)" : "events (no medium compared)";
    v.reason = std::to_string(plain_checked) + " encrypted file(s) checked for CE=0 writes; " +
               std::to_string(units) + " data unit(s) of " + std::to_string(files) +
               " file(s) compared with the model's ciphertext" +
               (bad_units ? " (" + std::to_string(bad_units) + " differ)" : "") +
               (plain_checked_units ? "; " + std::to_string(plain_checked_units) +
                                          " data unit(s) of unmodelled contents modes checked "
                                          "for plaintext"
                                    : "") +
               (fallback_ce ? "; " + std::to_string(fallback_ce) +
                                  " CE I/O(s) inside files the models send to "
                                  "blk-crypto-fallback"
                            : "") +
               (by_log ? "; " + std::to_string(by_log) +
                             " file(s) whose dm table maps no extent (dm-thin) placed where the "
                             "logs show their data units written"
                       : "") +
               (!run.opt.check_media ? " (medium check disabled)" : "");
    return v;
}

Verdict judge_reprogram_after_reset(const Run& run) {
    Verdict v;
    std::uint64_t wipes = 0, fails = 0;
    for (const auto& [ctrl, r] : run.res) {
        wipes += r.wipes_with_keys;
        fails += r.reset_fails.count;
        take(v, r.reset_fails, run.opt.max_details);
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

Verdict judge_km_program(const Run& run) {
    Verdict v;
    std::uint64_t programs = 0, wrapped = 0, ops = 0, fails = 0;
    for (const auto& [ctrl, r] : run.res) {
        programs += r.km_programs;
        wrapped += r.wrapped.size();
        ops += r.km_ops;
        fails += r.km_fails.count;
        take(v, r.km_fails, run.opt.max_details);
    }
    if (programs == 0 && wrapped == 0 && fails == 0) {
        v.reason = ops ? "no successful key-manager PROGRAM (" + std::to_string(ops) +
                             " other km event(s))"
                       : "no key-manager event in the logs";
        return v;
    }
    conclude(v, fails,
             std::to_string(programs) + " successful key-manager PROGRAM(s) and " +
                 std::to_string(wrapped) +
                 " wrapped program event(s): each PROGRAM directly followed by its slot's "
                 "wrapped program",
             "failure(s)");
    return v;
}

Verdict judge_wrapped_keys(const Run& run) {
    Verdict v;
    const auto& known = run.facts.hw_masters;
    std::set<std::string> generated;
    for (const auto& [ctrl, r] : run.res) {
        generated.insert(r.generated.begin(), r.generated.end());
    }
    // master_fp -> (inline key fp, where): one master key gives one inline key, on every device.
    std::map<std::string, std::pair<std::string, std::string>> by_master;
    std::uint64_t total = 0, model = 0, cons = 0, fails = 0;
    auto fail = [&](const std::string& s) {
        ++fails;
        if (v.details.size() < run.opt.max_details) {
            v.details.push_back(s);
        }
    };
    for (const auto& [ctrl, r] : run.res) {
        for (const auto& w : r.wrapped) {
            if (w.master_fp.empty()) {
                continue; // no key-manager PROGRAM before it: invariant 9's finding
            }
            ++total;
            const std::string where = ctrl + " seq " + std::to_string(w.seq) + " (" +
                                      run.facts.step_name(w.step) + ") slot " +
                                      std::to_string(w.slot);
            // Programs judged against a raw key below need no consistency finding of their own.
            const auto [it, fresh] = by_master.emplace(w.master_fp, std::pair{w.key_fp, where});
            auto consistent = [&, it = it, fresh = fresh] {
                ++cons;
                if (!fresh && it->second.first != w.key_fp) {
                    fail(where + ": master key " + w.master_fp + " armed as key " + w.key_fp +
                         ", but as key " + it->second.first + " at " + it->second.second +
                         ": the hardware KDF gives one inline key per master key");
                }
            };
            if (known.empty()) {
                consistent();
                continue;
            }
            const HwMaster* by_key = nullptr;
            const HwMaster* by_fp = nullptr;
            for (const auto& h : known) {
                by_key = !by_key && h.inline_fp == w.key_fp ? &h : by_key;
                by_fp = !by_fp && h.fp == w.master_fp ? &h : by_fp;
            }
            if (by_key) {
                if (by_key->fp != w.master_fp) {
                    fail(where + ": key " + w.key_fp + " is the inline key of the raw master key " +
                         by_key->source + " (" + by_key->fp + "), but its key-manager PROGRAM " +
                         "logged master_fp " + w.master_fp);
                } else {
                    ++model;
                }
            } else if (by_fp) {
                fail(where + ": programmed key " + w.key_fp + " from master key " + w.master_fp +
                     " (" + by_fp->source + "), whose inline key by the hardware KDF is " +
                     by_fp->inline_fp);
            } else if (generated.count(w.master_fp)) {
                consistent(); // a key the device generated: no raw key to derive from
            } else {
                fail(where + ": key " + w.key_fp + " (master_fp " + w.master_fp +
                     ") is derived from none of the " + std::to_string(known.size()) +
                     " raw master key(s) the run declares, and no GENERATE in the logs made it");
            }
        }
    }
    if (total == 0 && fails == 0) {
        v.reason = "no wrapped program (after a key-manager PROGRAM) in the logs";
        return v;
    }
    v.level = model == 0 ? "consistency" : cons ? "model+consistency" : "model";
    v.status = fails ? Status::fail : Status::pass;
    v.reason = std::to_string(total) + " wrapped program(s): " + std::to_string(model) +
               " checked against the hardware KDF of a known raw master key (" +
               std::to_string(known.size()) + " known), " + std::to_string(cons) +
               " only for one inline key per master key" +
               (fails ? "; " + std::to_string(fails) + " failure(s)" : "");
    for (const auto& h : known) {
        if (v.details.size() < run.opt.max_details) {
            v.details.push_back("known raw master key " + h.source + ": master_fp " + h.fp +
                                ", inline key " + h.inline_fp);
        }
    }
    return v;
}
} // namespace

} // namespace icemu::checker::detail

namespace icemu::checker {

namespace {
using namespace detail;

// The rows of docs/checker.md "Invariants" (title, kernel, level and "not applicable when"
// columns; the "check" column is prose the doc owns).
constexpr Invariant kInvariants[] = {
    {0, "event-logs", "the event logs parse and replay through the inline-crypto register model",
     "any", "model", "no log", judge_logs},
    {1, "keys-armed", "every crypto I/O used an armed slot holding the expected key", "any",
     "model / consistency", "no CE io", judge_keys_armed},
    {2, "dun", "the DUN each device saw equals the DUN the filesystem assigned", "any", "model",
     "no CE io inside a modelled file", judge_dun},
    {3, "dm-key-fanin",
     "a key used through a dm device or a multi-device filesystem was programmed on each "
     "underlying device that received I/O for it",
     "dm rules of the run's kernel",
     "model (consistency without file facts: invariant 1's per-controller check)",
     "no filesystem on dm or on several devices", judge_dm_key_fanin},
    {4, "keys-evicted", "after key removal / unmount no controller still holds the key", "any",
     "model", "no removal / no key", judge_keys_evicted},
    {5, "dm-sysfs", "sysfs queue/crypto of the dm device equals the dm_passthrough model",
     "dm rules of the run's kernel", "model", "no dm device in a disks report", judge_dm_sysfs},
    {6, "dm-reload-rule",
     "a reload with fewer capabilities is rejected (EINVAL), one with equal or more accepted",
     "dm rules of the run's kernel", "model", "no reload", judge_dm_reload_rule},
    {7, "medium",
     "ciphertext on the medium is the model's encryption of the known plaintext; no plaintext "
     "reached an encrypted region",
     "dm rules of the run's kernel", "model (medium) / events", "no encrypted file with extents",
     judge_medium},
    {8, "reprogram-after-reset",
     "after a host reset every key in use was reprogrammed before its next crypto I/O", "any",
     "model", "no wipe with keys held", judge_reprogram_after_reset},
    {9, "km-program",
     "every successful key-manager PROGRAM armed its slot with a wrapped key, and only such a "
     "PROGRAM did",
     "any", "model", "no key-manager PROGRAM and no wrapped program", judge_km_program},
    {10, "wrapped-keys",
     "a wrapped program's key is the hardware KDF's inline key of its master key", "any",
     "model / consistency", "no wrapped program", judge_wrapped_keys},
};

} // namespace

std::span<const Invariant> invariants() {
    return kInvariants;
}

} // namespace icemu::checker
