// blk-crypto keyslot policy (see keyslots.hpp for the rules and their sources).
#include "icemu/models/keyslots.hpp"

#include <algorithm>
#include <stdexcept>

namespace icemu::models::keyslots {

Profile::Profile(unsigned num_slots) : slots_(num_slots) {
    if (num_slots == 0) {
        throw std::invalid_argument("a keyslot profile needs at least one slot");
    }
    for (unsigned s = 0; s < num_slots; ++s) {
        idle_.push_back(s);
    }
}

std::optional<unsigned> Profile::slot_of(KeyId key) const {
    for (unsigned s = 0; s < slots_.size(); ++s) {
        if (slots_[s].key == key) {
            return s;
        }
    }
    return std::nullopt;
}

void Profile::remove_from_idle(unsigned slot) {
    idle_.erase(std::find(idle_.begin(), idle_.end(), slot));
}

GetResult Profile::get(KeyId key, bool program_fails) {
    GetResult r;
    if (const auto hit = slot_of(key)) {
        if (++slots_[*hit].refs == 1) {
            remove_from_idle(*hit);
        }
        r.slot = hit;
        return r;
    }
    if (idle_.empty()) {
        r.would_block = true;
        return r;
    }
    const unsigned victim = idle_.front();
    ops_.push_back(HwOp{HwOp::Kind::program, victim, key});
    r.programmed = true;
    if (program_fails) {
        r.program_failed = true; // slot keeps its old key and its LRU position
        return r;
    }
    slots_[victim].key = key;
    slots_[victim].refs = 1;
    remove_from_idle(victim);
    r.slot = victim;
    return r;
}

void Profile::put(unsigned slot) {
    auto& s = slots_.at(slot);
    if (s.refs == 0) {
        throw std::logic_error("put of keyslot " + std::to_string(slot) + " without a reference");
    }
    if (--s.refs == 0) {
        idle_.push_back(slot);
    }
}

EvictResult Profile::evict(KeyId key, bool evict_fails) {
    const auto slot = slot_of(key);
    if (!slot) {
        return EvictResult::not_present;
    }
    auto& s = slots_[*slot];
    EvictResult r = EvictResult::evicted;
    if (s.refs != 0) {
        r = EvictResult::busy;
    } else {
        ops_.push_back(HwOp{HwOp::Kind::evict, *slot, key});
        r = evict_fails ? EvictResult::failed : EvictResult::evicted;
    }
    s.key.reset(); // unlinked even on error
    return r;
}

void Profile::reprogram_all() {
    for (unsigned s = 0; s < slots_.size(); ++s) {
        if (slots_[s].key) {
            ops_.push_back(HwOp{HwOp::Kind::program, s, *slots_[s].key});
        }
    }
}

std::string_view to_string(Finding::Kind k) {
    switch (k) {
    case Finding::Kind::evict_of_empty_slot:
        return "evict-of-empty-slot";
    case Finding::Kind::duplicate_key:
        return "duplicate-key";
    case Finding::Kind::missing_reprogram:
        return "missing-reprogram";
    case Finding::Kind::io_before_reprogram:
        return "io-before-reprogram";
    case Finding::Kind::io_on_unprogrammed_slot:
        return "io-on-unprogrammed-slot";
    case Finding::Kind::io_key_mismatch:
        return "io-key-mismatch";
    }
    return "?";
}

TrafficChecker::TrafficChecker(unsigned num_slots)
    : keys_(num_slots), before_wipe_(num_slots), reprogrammed_(num_slots, false),
      armed_(num_slots, false), awaiting_(num_slots), wipe_seq_(num_slots, 0) {}

void TrafficChecker::add(Finding::Kind k, std::uint64_t seq, unsigned slot, std::string detail) {
    findings_.push_back(Finding{k, seq, slot, std::move(detail)});
}

void TrafficChecker::reset() {
    const std::size_t n = keys_.size();
    keys_.assign(n, std::string());
    before_wipe_.assign(n, std::string());
    reprogrammed_.assign(n, false);
    armed_.assign(n, false);
    awaiting_.assign(n, std::string());
    wipe_seq_.assign(n, 0);
    pending_reprogram_ = false;
    init_phase_ = true;
}

void TrafficChecker::observe(const events::Event& e) {
    const auto in_range = [&](unsigned s) { return s < keys_.size(); };
    if (const auto* en = std::get_if<events::Enable>(&e.body)) {
        if (!en->on) {
            return;
        }
        init_phase_ = false;
        if (pending_reprogram_) {
            for (unsigned s = 0; s < keys_.size(); ++s) {
                if (!before_wipe_[s].empty() && !reprogrammed_[s]) {
                    add(Finding::Kind::missing_reprogram, e.seq, s,
                        "slot " + std::to_string(s) + " held key " + before_wipe_[s] +
                            " before the wipe and was not reprogrammed before enable");
                }
            }
            pending_reprogram_ = false;
        }
    } else if (std::holds_alternative<events::Wipe>(e.body)) {
        for (unsigned s = 0; s < keys_.size(); ++s) {
            if (armed_[s] && !keys_[s].empty()) {
                awaiting_[s] = keys_[s];
                wipe_seq_[s] = e.seq;
            }
        }
        std::fill(armed_.begin(), armed_.end(), false);
        before_wipe_ = keys_;
        std::fill(keys_.begin(), keys_.end(), std::string());
        std::fill(reprogrammed_.begin(), reprogrammed_.end(), false);
        pending_reprogram_ = true;
    } else if (const auto* p = std::get_if<events::Program>(&e.body)) {
        if (!in_range(p->slot)) {
            return;
        }
        awaiting_[p->slot].clear();
        armed_[p->slot] = p->ok;
        if (p->ok) {
            // Other slots holding the same key; a duplicate once they are as many as the
            // kernel's blk_crypto_keys with that key (each takes at most one slot).
            std::vector<unsigned> holders;
            for (unsigned s = 0; s < keys_.size(); ++s) {
                if (s != p->slot && keys_[s] == p->key_fp) {
                    holders.push_back(s);
                }
            }
            const auto c = copies_.find(p->key_fp);
            const unsigned allowed = c == copies_.end() ? 1 : std::max(c->second, 1u);
            if (holders.size() >= allowed) {
                std::string where;
                for (unsigned s : holders) {
                    where += (where.empty() ? "" : ", ") + std::to_string(s);
                }
                add(Finding::Kind::duplicate_key, e.seq, p->slot,
                    "key " + p->key_fp + " programmed into slot " + std::to_string(p->slot) +
                        " while slot" + (holders.size() > 1 ? "s " : " ") + where + " still hold" +
                        (holders.size() > 1 ? "" : "s") + " it" +
                        (allowed > 1 ? " (the kernel has " + std::to_string(allowed) +
                                           " blk_crypto_keys with this key)"
                                     : ""));
            }
            keys_[p->slot] = p->key_fp;
            reprogrammed_[p->slot] = p->key_fp == before_wipe_[p->slot];
        } else {
            keys_[p->slot].clear();
        }
    } else if (const auto* ev = std::get_if<events::Evict>(&e.body)) {
        if (!in_range(ev->slot)) {
            return;
        }
        awaiting_[ev->slot].clear();
        armed_[ev->slot] = false;
        const bool expected_after_wipe = pending_reprogram_ && !before_wipe_[ev->slot].empty();
        if (!init_phase_ && keys_[ev->slot].empty() && !expected_after_wipe) {
            add(Finding::Kind::evict_of_empty_slot, e.seq, ev->slot,
                "evict of slot " + std::to_string(ev->slot) + ", which holds no key");
        }
        if (expected_after_wipe) {
            before_wipe_[ev->slot].clear(); // the kernel dropped it; no reprogram expected
        }
        keys_[ev->slot].clear();
    } else if (const auto* d = std::get_if<events::Disarm>(&e.body)) {
        if (in_range(d->slot)) {
            armed_[d->slot] = false;
        }
    } else if (const auto* io = std::get_if<events::Io>(&e.body)) {
        if (io->ce && io->slot >= 0 && in_range(static_cast<unsigned>(io->slot)) &&
            !awaiting_[static_cast<unsigned>(io->slot)].empty()) {
            const auto s = static_cast<unsigned>(io->slot);
            add(Finding::Kind::io_before_reprogram, e.seq, s,
                "crypto I/O on slot " + std::to_string(s) +
                    (io->error.empty() ? "" : " (refused: " + io->error + ")") +
                    " after the wipe at seq " + std::to_string(wipe_seq_[s]) + ", before key " +
                    awaiting_[s] + " was reprogrammed");
            awaiting_[s].clear();
        }
        if (!io->ce || io->ocs != 0 || io->slot < 0 || !in_range(static_cast<unsigned>(io->slot))) {
            return;
        }
        const auto s = static_cast<unsigned>(io->slot);
        if (keys_[s].empty()) {
            add(Finding::Kind::io_on_unprogrammed_slot, e.seq, s,
                "crypto I/O succeeded on slot " + std::to_string(s) + ", which holds no key");
        } else if (io->key_fp != keys_[s]) {
            add(Finding::Kind::io_key_mismatch, e.seq, s,
                "crypto I/O on slot " + std::to_string(s) + " used key " + io->key_fp +
                    " but the slot was programmed with " + keys_[s]);
        }
    }
}

} // namespace icemu::models::keyslots
