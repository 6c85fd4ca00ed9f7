// dm_passthrough: how device-mapper exposes inline-crypto capabilities and evicts keys.
//
// Models (drivers/md/dm-table.c, drivers/md/dm-ioctl.c, block/blk-crypto-profile.c; read in
// Linux 6.12 and 7.3.4, line numbers 7.3.4):
//   - a crypto profile = per-mode data-unit-size masks (bit n = 2^n bytes), max DUN bytes and
//     (7.x) supported key types; no profile (nullopt) = no crypto;
//   - intersect(parent, child): min(max_dun), AND of masks and key types; a device without a
//     profile clears everything (blk_crypto_intersect_capabilities, 7.3.4
//     blk-crypto-profile.c:554-572);
//   - dm_table_construct_crypto_profile (7.3.4 dm-table.c:1387-1460): start from all bits,
//     max_dun UINT_MAX; a target type that does not pass crypto clears everything and stops;
//     otherwise intersect with every device the target iterates; then the reload rule (below);
//     then an all-zero profile becomes "no profile";
//   - passthrough target types: the dm-passthrough-* rules of kernel_rules.hpp (6.1 and 6.12
//     linear, flakey; 7.x also striped, thin-pool, thin: DM_TARGET_PASSES_CRYPTO);
//   - reload rule: DM_TABLE_LOAD fails with -EINVAL when the new profile does not have every
//     capability of the device queue's current profile (blk_crypto_has_capabilities, 7.3.4
//     blk-crypto-profile.c:583-608; 7.x also compares key types; num_slots is not compared).
//     The queue profile is set by the FIRST load (dm_setup_md_queue before add_disk,
//     dm-ioctl.c:1659-1665) and widened at each resume (dm_update_crypto_profile);
//   - sysfs queue/crypto exists only if the first loaded table had a profile (the profile is
//     registered with the disk, block/blk-crypto-sysfs.c blk_crypto_sysfs_register);
//   - eviction: a key evicted from the dm device is evicted from every device of the LIVE table,
//     in target order (dm_keyslot_evict, 7.3.4 dm-table.c:1157-1181); errors are ignored; the
//     previous table's devices are not evicted (a reload swaps the table without an evict),
//     which can leave stale keyslots.
#pragma once

#include "icemu/models/kernel_rules.hpp"
#include "icemu/models/ufshci_crypto.hpp"
#include "icemu/models/xts.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace icemu::models::dm {

/// The kernel's rules (kernel_rules.hpp): which targets pass crypto through
/// (dm-passthrough-*), whether a reload compares key types (dm-reload-compares-key-types) and
/// whether sysfs shows them (sysfs-key-type-files).
using KernelRules = kernel::Rules;

/// enum blk_crypto_mode_num (include/linux/blk-crypto.h:13-20); index 0 is INVALID but is part
/// of the modes array the kernel intersects and tests for emptiness.
enum class Mode : unsigned {
    invalid = 0,
    aes_256_xts = 1,
    aes_128_cbc_essiv = 2,
    adiantum = 3,
    sm4_xts = 4
};
inline constexpr unsigned kNumModes = 5;
/// sysfs names of modes/<name> (blk-crypto-sysfs.c; "" for INVALID, which has no file).
std::string_view mode_name(Mode m);

/// enum blk_crypto_key_type (7.x include/linux/blk-crypto.h:26-40).
inline constexpr unsigned kKeyTypeRaw = 0x1;
inline constexpr unsigned kKeyTypeHwWrapped = 0x2;

struct CryptoCaps {
    std::array<std::uint32_t, kNumModes> modes{}; ///< data-unit-size masks
    unsigned max_dun_bytes = 0;
    unsigned key_types = kKeyTypeRaw; ///< 7.x only; 6.12 behaves as raw keys only
    unsigned num_slots = 0;           ///< informational (never compared)

    bool empty() const; ///< no mode bit set (the kernel's "empty profile")
    friend bool operator==(const CryptoCaps&, const CryptoCaps&) = default;
};

using Profile = std::optional<CryptoCaps>;

/// The profile ufshcd builds from CCAP/x-CRYPTOCAP (ufshcd_hba_init_crypto_capabilities,
/// drivers/ufs/core/ufshcd-crypto.c): only
/// {AES-XTS, KS=256} caps count, modes[AES_256_XTS] |= SDUSB * 512, max DUN 8 bytes, and
/// `key_types` (raw keys unless the driver says otherwise: key_types_of).
CryptoCaps ufs_profile(const std::vector<ufshci::CryptoCap>& caps, unsigned slots,
                       unsigned key_types = kKeyTypeRaw);

/// The key types a controller's profile supports, from its realize event, for a kernel with
/// blk-crypto key types (rule blk-crypto-key-types; older kernels: raw only). Without the key
/// manager (no `wrapped_keys`): raw only (ufshcd-crypto.c, cqhci-crypto.c). With it: hardware-
/// wrapped, plus raw unless `raw_keys` is false (icemu's driver, patches/7.x/0003,
/// ufshcd-pci.c: key_types_supported = HW_WRAPPED, |= RAW when the device takes raw keys).
unsigned key_types_of(const events::Realize& r, const KernelRules& v);

/// The dm starting profile: all mode bits, max DUN UINT_MAX, all key types, 0 slots.
CryptoCaps dm_initial_caps();
void intersect(CryptoCaps& parent, const Profile& child);
/// blk_crypto_has_capabilities(target, reference).
bool has_capabilities(const Profile& target, const Profile& reference, const KernelRules& v);

/// Whether a target type has DM_TARGET_PASSES_CRYPTO in that kernel.
bool passes_crypto(std::string_view target_type, const KernelRules& v);

struct Target {
    std::string type;                 ///< "linear", "flakey", "crypt", ...
    std::vector<std::string> devices; ///< what iterate_devices yields (thin-pool: data dev)
};

struct Table {
    std::vector<Target> targets;
};

/// Underlying device name -> its queue's profile (nullopt: no crypto).
using DeviceProfiles = std::map<std::string, Profile>;

/// The profile a table would get, before the reload check and before empty -> nullopt.
/// Throws std::out_of_range if a device is not in `devices`.
CryptoCaps construct_caps(const Table& t, const DeviceProfiles& devices, const KernelRules& v);

// ---- Table lines: what a target's parameters say about its devices and its mapping -----------

/// One line of a dm table (`<start> <len> <type> <params>`, as DM_TABLE_LOAD takes it) with what
/// the models need from its parameters (7.3.4 / 6.12 drivers/md constructors):
///   - linear, flakey `<dev> <offset> ...`; delay `<dev> <offset> <ms>` (one device group maps
///     reads and writes like linear): `dev`, `offset`;
///   - striped `<n> <chunk> (<dev> <offset>){n}` (stripe_ctr): `chunk`, `stripes`;
///   - inlinecrypt `<cipher> <hex key> <iv_offset> <dev> <start> [<#opts> sector_size:N ...]`
///     (7.x dm-inlinecrypt.c inlinecrypt_ctr): `inline_crypt`, `dev`, `offset`;
///   - `device_tokens`: what the target's iterate_devices yields: linear, flakey, thin the first
///     argument (thin_iterate_devices: the pool), thin-pool only the data device (the second;
///     pool_iterate_devices), striped every stripe device, crypt and inlinecrypt the 4th, delay
///     its 1-3 device groups; other types every token (a superset).
/// Parameters that do not parse leave the mapping fields empty (the segment is not mapped).
struct Segment {
    std::uint64_t start = 0, len = 0; ///< sectors on the dm device
    std::string type;
    std::vector<std::string> device_tokens;
    std::string dev;          ///< linear/flakey/delay/inlinecrypt device token ("" = not mapped)
    std::uint64_t offset = 0; ///< sectors on `dev`
    std::uint64_t chunk = 0;  ///< striped: chunk size in sectors
    std::vector<std::pair<std::string, std::uint64_t>> stripes; ///< (device token, start sector)
    struct InlineCrypt {
        Bytes key;
        std::uint64_t iv_offset = 0;
        unsigned sector_bits = 9; ///< log2 of the `sector_size:` option (512..4096)
    };
    std::optional<InlineCrypt> inline_crypt; ///< an inlinecrypt line whose key parsed

    /// The target's Target (type + devices) with each device token resolved by `resolve`
    /// (tokens it returns nullopt for are left out).
    template <class Resolve>
    Target target(Resolve&& resolve) const {
        Target t;
        t.type = type;
        for (const auto& w : device_tokens) {
            if (auto r = resolve(w)) {
                t.devices.push_back(*r);
            }
        }
        return t;
    }
};

/// Parses one table line's parameters (`params` as in the table, whitespace-separated).
Segment parse_segment(std::uint64_t start, std::uint64_t len, std::string type,
                      std::string_view params);

/// A byte range of an underlying device that a byte range of the dm device maps onto.
struct MappedRange {
    std::string dev;           ///< device token
    std::uint64_t dev_off = 0; ///< bytes on `dev`
    std::uint64_t len = 0;     ///< bytes
    std::uint64_t dm_off = 0;  ///< bytes on the dm device where it starts
};

/// Where [off, off+len) bytes of the dm device go through one segment: linear, flakey and delay
/// (one device group) shift by the segment's offset; striped splits at chunk boundaries, chunk c
/// (of the segment) going to stripe c mod n, row c / n (dm-stripe.c stripe_map_sector). Other
/// types (and segments whose parameters did not parse) map nothing.
std::vector<MappedRange> map_bytes(const Segment& s, std::uint64_t off, std::uint64_t len);

/// What /sys/block/<dm>/queue/crypto/ shows (block/blk-crypto-sysfs.c, 6.12 and 7.3.4).
struct SysfsCrypto {
    bool present = false; ///< directory exists
    unsigned max_dun_bits = 0;
    unsigned num_keyslots = 0;
    std::map<std::string, std::uint32_t> modes; ///< modes/<name>, only non-zero masks
    bool raw_keys = false;                      ///< 7.x file `raw_keys`
    bool hw_wrapped_keys = false;               ///< 7.x file `hw_wrapped_keys`
    friend bool operator==(const SysfsCrypto&, const SysfsCrypto&) = default;
};
SysfsCrypto sysfs_view(const Profile& p, bool dir_present, const KernelRules& v);

inline constexpr int kEINVAL = 22;

/// One mapped device: load (into the inactive slot), resume (swap in), clear, evict.
class DmDevice {
public:
    explicit DmDevice(const KernelRules& v) : version_(v) {}

    /// DM_TABLE_LOAD: 0 on success, -EINVAL when the reload rule rejects the table.
    int load(const Table& t, const DeviceProfiles& devices);
    /// DM_DEV_SUSPEND (resume): the inactive table becomes live; false if there is none.
    bool resume();
    /// DM_TABLE_CLEAR: drops the inactive table.
    void clear() { inactive_.reset(); }

    const std::optional<Table>& live() const { return live_; }
    const std::optional<Table>& inactive() const { return inactive_; }
    /// The dm queue's crypto profile (what stacked devices and fscrypt see).
    const Profile& queue_profile() const { return queue_profile_; }
    SysfsCrypto sysfs() const { return sysfs_view(queue_profile_, sysfs_dir_, version_); }

    /// Devices a blk_crypto_evict_key on this dm device reaches: every device of every target of
    /// the live table, in order (a device listed twice is evicted twice; the second is a no-op).
    std::vector<std::string> evict_fanout() const;

private:
    KernelRules version_;
    bool loaded_once_ = false;
    bool sysfs_dir_ = false;
    Profile queue_profile_;
    std::optional<Table> live_;
    std::optional<Table> inactive_;
    Profile inactive_profile_;
};

} // namespace icemu::models::dm
