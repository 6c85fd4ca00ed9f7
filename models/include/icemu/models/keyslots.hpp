// keyslots: Linux's blk-crypto keyslot management (struct blk_crypto_profile), and invariants
// on the program/evict traffic a device observes.
//
// Models (block/blk-crypto-profile.c; line numbers 6.12, the same policy in 7.3.4):
//   - slots start on the idle (LRU) list in index order 0..N-1 (:103-110);
//   - a key is matched by identity (the blk_crypto_key pointer, :170-202), modelled as KeyId;
//     two keys with equal bytes are different keys;
//   - get (:248-317): a hit takes a ref (and leaves the LRU list on 0->1); a miss takes the LRU
//     head and programs it directly over its old contents -- no evict call; no idle slot means
//     the caller sleeps (modelled as `would_block`); a failed program changes nothing;
//   - put (:325-336): on 1->0 the slot goes to the LRU tail and keeps its key;
//   - evict (:363-407): a key in no slot touches no hardware; refs != 0 gives -EBUSY without
//     hardware access; otherwise keyslot_evict(slot); either way the slot is unlinked (even on
//     error) and stays where it is in the LRU list;
//   - reprogram_all (:418-438): programs every slot with a key, in index order; used by UFS on
//     every HCE enable before HCE=1 (ufshcd_hba_start -> ufshcd_crypto_enable,
//     drivers/ufs/core/ufshcd-crypto.c) and by MMC on reset.
// Not modelled: profiles with 0 slots (dm; see dm_passthrough.hpp) and the fallback.
//
// TrafficChecker states invariants on what a device saw (its event log), which is all a
// checker can observe: it does not see get/put, only program/evict/wipe/enable/io.
#pragma once

#include "icemu/models/events.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace icemu::models::keyslots {

/// Identity of a blk_crypto_key (Linux compares pointers, not bytes).
using KeyId = std::uint64_t;

/// A hardware operation the profile issues to the driver (ll_ops).
struct HwOp {
    enum class Kind { program, evict };
    Kind kind = Kind::program;
    unsigned slot = 0;
    KeyId key = 0;
    friend bool operator==(const HwOp&, const HwOp&) = default;
};

enum class EvictResult {
    not_present, ///< key in no slot: return 0, no hardware access
    busy,        ///< refs != 0: WARN, -EBUSY, unlinked without hardware access
    evicted,     ///< keyslot_evict called, slot unlinked
    failed,      ///< keyslot_evict returned an error; unlinked anyway
};

struct GetResult {
    std::optional<unsigned> slot; ///< nullopt: would block (no idle slot) or program failed
    bool programmed = false;      ///< a keyslot_program was issued
    bool would_block = false;
    bool program_failed = false;
};

class Profile {
public:
    explicit Profile(unsigned num_slots); ///< num_slots >= 1

    /// blk_crypto_get_keyslot. `program_fails` simulates ll_ops.keyslot_program returning err.
    GetResult get(KeyId key, bool program_fails = false);
    /// blk_crypto_put_keyslot. Throws std::logic_error if the slot has no reference.
    void put(unsigned slot);
    /// __blk_crypto_evict_key. `evict_fails` simulates keyslot_evict returning err.
    EvictResult evict(KeyId key, bool evict_fails = false);
    /// blk_crypto_reprogram_all_keys: one program per slot holding a key, index order.
    void reprogram_all();

    unsigned num_slots() const { return static_cast<unsigned>(slots_.size()); }
    std::optional<unsigned> slot_of(KeyId key) const;
    std::optional<KeyId> key_in(unsigned slot) const { return slots_.at(slot).key; }
    unsigned refs(unsigned slot) const { return slots_.at(slot).refs; }
    /// The idle list, head (next victim) first.
    const std::deque<unsigned>& idle_list() const { return idle_; }

    /// Every hardware operation issued so far, in order.
    const std::vector<HwOp>& hw_ops() const { return ops_; }
    void clear_hw_ops() { ops_.clear(); }

private:
    struct SlotState {
        std::optional<KeyId> key;
        unsigned refs = 0;
    };
    void remove_from_idle(unsigned slot);

    std::vector<SlotState> slots_;
    std::deque<unsigned> idle_;
    std::vector<HwOp> ops_;
};

/// One invariant violation found in observed traffic.
struct Finding {
    enum class Kind {
        evict_of_empty_slot,     ///< an evict (after init) of a slot holding no key
        duplicate_key,           ///< a key fingerprint programmed while another slot holds it
        missing_reprogram,       ///< an enable after a wipe without re-programming a held key
        io_before_reprogram,     ///< CE io (even refused) on a slot that held a key at the last
                                 ///< wipe, before the slot was programmed or evicted again
        io_on_unprogrammed_slot, ///< CE io on a slot holding no key
        io_key_mismatch,         ///< CE io whose key_fp differs from the slot's programmed key
    };
    Kind kind;
    std::uint64_t seq = 0; ///< seq of the event that revealed it
    unsigned slot = 0;
    std::string detail;
};
std::string_view to_string(Finding::Kind k);

/// Replays one controller's event log and collects violations of the Linux keyslot policy as
/// seen from the device. The "init" phase (before the first `enable` with on=true) may evict
/// empty slots: ufshcd_init_crypto evicts every slot at probe (ufshcd-crypto.c:229-240).
class TrafficChecker {
public:
    explicit TrafficChecker(unsigned num_slots);
    void observe(const events::Event& e);
    const std::vector<Finding>& findings() const { return findings_; }
    /// Fingerprint held by each slot according to the traffic (empty string = none).
    const std::vector<std::string>& slot_keys() const { return keys_; }
    /// The kernel holds `n` distinct blk_crypto_keys whose inline key has fingerprint `key_fp`
    /// (default 1): up to `n` slots may hold it at once without a duplicate-key finding. With
    /// a hardware-wrapped key fscrypt prepares one blk_crypto_key per IV_INO_LBLK_* flavour
    /// (fs/crypto/keysetup.c, setup_iv_ino_lblk_*_key -> fscrypt_prepare_inline_crypt_key)
    /// from the same ephemeral blob, so the same inline key can sit in two slots.
    /// A machine reset (reboot): the slots hold nothing and the next boot's probe may evict
    /// empty slots again (the init phase). Findings so far are kept; allowances too.
    void reset();
    void allow_copies(const std::string& key_fp, unsigned n) { copies_[key_fp] = n; }

private:
    void add(Finding::Kind k, std::uint64_t seq, unsigned slot, std::string detail);

    std::vector<std::string> keys_;
    std::vector<std::string> before_wipe_; ///< slot keys at the last wipe (for reprogram checks)
    std::vector<bool> reprogrammed_;
    std::vector<bool> armed_;             ///< CFGE=1 with a key (a disarm clears it, keys_ stays)
    std::vector<std::string> awaiting_;   ///< key held at the last wipe, until a program / evict
    std::vector<std::uint64_t> wipe_seq_; ///< seq of the wipe that set awaiting_[slot]
    bool pending_reprogram_ = false;
    bool init_phase_ = true;
    std::map<std::string, unsigned> copies_; ///< key_fp -> blk_crypto_keys with that key
    std::vector<Finding> findings_;
};

} // namespace icemu::models::keyslots
