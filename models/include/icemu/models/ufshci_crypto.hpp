// ufshci_crypto: the UFSHCI inline-crypto register semantics as a state machine fed by MMIO
// writes, plus the outcome of a data command with CE/CCI/DUN.
//
// Models (register facts: include/ufs/ufshci.h and drivers/ufs/core/ufshcd-crypto.c in 6.12;
// device behaviour: docs/device.md "Register map", "Data path", "Errors"):
//   - CAP.CS (0x00 bit 28) = 1; HCE (0x34): bit 0 enable, bit 1 CGE latched from every write;
//   - CCAP (0x100): CC 7:0 = number of caps, CFGC 15:8 = slots-1, CFGPTR 31:24 = 0x20;
//   - x-CRYPTOCAP[i] (0x104+4i): ALGID 7:0, SDUSB 15:8, KS 23:16;
//   - x-CRYPTOCFG[s] (CFGPTR*0x100 + 0x80*s): dwords 0-15 CRYPTOKEY (write-only, read 0),
//     dword 16 DUSIZE 7:0 (one-hot, size/512) | CAPIDX 15:8 | CFGE 31 (reads back), dwords
//     17-31 stored and read back.
//
// Invariants / rules:
//   - writing dword 16 with CFGE=1 arms the slot iff CAPIDX < CC, DUSIZE is one-hot and set in
//     the cap's SDUSB, the cap is AES-XTS with KS 128 or 256 (the only implemented algorithm);
//     otherwise the slot is "armed but invalid" and CE requests on it get OCS 0x9. The key used
//     is snapshotted at arm time (K1 at CRYPTOKEY byte 0, K2 at byte 32, as
//     ufshcd_crypto_keyslot_program lays out an XTS key);
//   - dword 16 with CFGE=0 disarms; when the previous keyslot-window write was dword 17 of the
//     same slot and all key dwords are zero it is an `evict` (Linux's 19-write evict,
//     ufshcd-crypto.c:98-111), else a `disarm` if the slot was armed (docs/event-log.md);
//   - keyslot writes are accepted in any HCE state; slots survive HCE 0->1 (Linux reprograms
//     them from ufshcd_hba_start before it writes HCE); with
//     wipe_on_disable, HCE 1->0 clears every slot (keys, dwords, armed state);
//   - a CE data command is checked in the order of docs/device.md "Errors": a data-out command
//     that is not WRITE (or WRITE AND VERIFY) gets OCS 0x9 INVALID_CRYPTO_CONFIG ("opcode"); a
//     READ/WRITE first consumes an injected fault (OCS 0xA GENERAL_CRYPTO_ERROR, "injected"), then
//     gets OCS 0x9 for CGE=0, CCI >= slots, a disarmed or invalid slot, or a start/length that is
//     not a multiple of the slot's data unit (ufshci.h:459-460); otherwise OCS 0 and each data unit
//     is AES-XTS'd with tweak DUN + unit index (xts.hpp, DunCarry::kernel_fallback);
//   - a program's key_fp is the fingerprint of the key as used when the cap is AES-XTS-128/256,
//     "" otherwise (event-log.md `program`).
//
// LogReplay (below) applies the same rules to an event log, for a checker without MMIO access.
#pragma once

#include "icemu/models/events.hpp"
#include "icemu/models/xts.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icemu::models::ufshci {

// ---- Register offsets (BAR0) -----------------------------------------------------------------
inline constexpr std::uint32_t kRegCap = 0x00;
inline constexpr std::uint32_t kRegHce = 0x34;
inline constexpr std::uint32_t kRegCcap = 0x100;
inline constexpr std::uint32_t kRegCryptoCap0 = 0x104;
inline constexpr std::uint32_t kCfgPtr = 0x20;             ///< CCAP.CFGPTR of icemu
inline constexpr std::uint32_t kCfgBase = kCfgPtr * 0x100; ///< x-CRYPTOCFG[0]
inline constexpr std::uint32_t kCfgSlotBytes = 0x80;       ///< 32 dwords per slot
inline constexpr unsigned kCfgDwords = 32;
inline constexpr unsigned kCfgKeyDwords = 16; ///< dwords 0-15 CRYPTOKEY
inline constexpr unsigned kCfgDwordDu = 16;   ///< DUSIZE/CAPIDX/CFGE
inline constexpr unsigned kCfgDwordVsb = 17;  ///< written last-but-one by Linux
inline constexpr unsigned kMaxSlots = 256;
/// x-CRYPTOCAP[CC-1] must end before 0x300 (REG_UFS_MEM_CFG, include/ufs/ufshci.h).
inline constexpr unsigned kMaxCaps = (0x300 - kRegCryptoCap0) / 4;

inline constexpr std::uint32_t cfg_offset(unsigned slot, unsigned dword) {
    return kCfgBase + slot * kCfgSlotBytes + dword * 4;
}

// ---- Single-bit flags -----------------------------------------------------------------------
inline constexpr std::uint32_t kCapCs = 1u << 28;    ///< CAP.CS (ufshci.h:80)
inline constexpr std::uint32_t kHceEnable = 1u << 0; ///< HCE.HCE (ufshci.h:234)
inline constexpr std::uint32_t kHceCge = 1u << 1;    ///< HCE.CGE (ufshci.h:235)
inline constexpr std::uint32_t kIsCefes = 1u << 18;  ///< IS.CEFES (ufshci.h:191)

// ---- OCS values (ufshci.h:459-460) ------------------------------------------------------------
inline constexpr std::uint8_t kOcsSuccess = 0x0;
inline constexpr std::uint8_t kOcsInvalidCryptoConfig = 0x9;
inline constexpr std::uint8_t kOcsGeneralCryptoError = 0xA;

// ---- The field table: one row per register field; drives encode and decode -------------------
enum class FieldId {
    ccap_cc,
    ccap_cfgc,
    ccap_cfgptr,
    cap_algid,
    cap_sdusb,
    cap_ks,
    cfg_dusize,
    cfg_capidx,
    cfg_cfge
};

struct FieldDef {
    FieldId id;
    std::string_view reg;  ///< register name in the UFSHCI spec
    std::string_view name; ///< field name in the UFSHCI spec
    unsigned lsb;
    unsigned width;
    std::string_view source;
};

inline constexpr std::array<FieldDef, 9> kFields{{
    {FieldId::ccap_cc, "CCAP", "CC", 0, 8, "ufshci.h:372-380"},
    {FieldId::ccap_cfgc, "CCAP", "CFGC", 8, 8, "ufshci.h:372-380"},
    {FieldId::ccap_cfgptr, "CCAP", "CFGPTR", 24, 8, "ufshci.h:372-380"},
    {FieldId::cap_algid, "x-CRYPTOCAP", "ALGID", 0, 8, "ufshci.h:398-406"},
    {FieldId::cap_sdusb, "x-CRYPTOCAP", "SDUSB", 8, 8, "ufshci.h:398-406"},
    {FieldId::cap_ks, "x-CRYPTOCAP", "KS", 16, 8, "ufshci.h:398-406"},
    {FieldId::cfg_dusize, "x-CRYPTOCFG dword 16", "DUSIZE", 0, 8, "ufshci.h:408-423"},
    {FieldId::cfg_capidx, "x-CRYPTOCFG dword 16", "CAPIDX", 8, 8, "ufshci.h:408-423"},
    {FieldId::cfg_cfge, "x-CRYPTOCFG dword 16", "CFGE", 31, 1, "ufshci.h:408-423"},
}};

constexpr const FieldDef& field(FieldId id) {
    for (const auto& f : kFields) {
        if (f.id == id) {
            return f;
        }
    }
    return kFields[0]; // unreachable: every FieldId has a row (checked in tests)
}
constexpr std::uint32_t field_mask(FieldId id) {
    const auto& f = field(id);
    return (f.width >= 32 ? 0xffffffffu : ((1u << f.width) - 1u)) << f.lsb;
}
constexpr std::uint32_t get_field(FieldId id, std::uint32_t reg) {
    return (reg & field_mask(id)) >> field(id).lsb;
}
constexpr std::uint32_t set_field(FieldId id, std::uint32_t reg, std::uint32_t value) {
    return (reg & ~field_mask(id)) | ((value << field(id).lsb) & field_mask(id));
}

// ---- Capability entries ----------------------------------------------------------------------
enum class AlgId : std::uint8_t {
    aes_xts = 0,
    bitlocker_aes_cbc = 1,
    aes_ecb = 2,
    essiv_aes_cbc = 3
};
enum class KeySize : std::uint8_t { invalid = 0, k128 = 1, k192 = 2, k256 = 3, k512 = 4 };

/// Key size in bits for a KS code (0 for invalid/unknown).
unsigned key_bits(KeySize ks);

struct CryptoCap {
    AlgId algid = AlgId::aes_xts;
    std::uint8_t sdusb = 0; ///< bit j: data unit 512<<j bytes
    KeySize ks = KeySize::k256;

    std::uint32_t encode() const;
    static CryptoCap decode(std::uint32_t reg);
    /// Only AES-XTS with 128- or 256-bit keys can be armed (docs/device.md).
    bool implemented() const;
    bool allows_data_unit(std::uint32_t bytes) const;
    friend bool operator==(const CryptoCap&, const CryptoCap&) = default;
};

/// Parses the `crypto-caps` property syntax of docs/device.md, e.g.
/// "aes-xts-256:0x0f/aes-xts-128:0x08/aes-ecb-256:0x0f". Throws std::invalid_argument.
std::vector<CryptoCap> parse_crypto_caps(std::string_view text);
std::string format_crypto_caps(const std::vector<CryptoCap>& caps);

/// DUSIZE one-hot code <-> bytes (512 << bit). decode returns 0 when not one-hot.
std::uint32_t dusize_bytes(std::uint32_t dusize_code);
std::uint32_t dusize_code(std::uint32_t bytes);

struct Config {
    unsigned slots = 32; ///< 1..256
    std::vector<CryptoCap> caps{CryptoCap{AlgId::aes_xts, 0x0f, KeySize::k256}};
    bool wipe_on_disable = true;
    bool log_keys = false;
};

/// The program-time validation result; names are the event log's `error` strings.
/// Why a CFGE=1 write left the slot unusable (the schema's program errors, events.hpp).
using events::ProgramError;

struct Slot {
    std::array<std::uint32_t, kCfgDwords> dw{}; ///< raw dwords as written
    bool armed = false;                         ///< CFGE=1 was accepted
    ProgramError error = ProgramError::none;    ///< validation at arm time
    bool valid() const { return armed && error == ProgramError::none; }
    std::uint32_t capidx = 0;
    std::uint32_t dusize = 0; ///< bytes, at arm time (0 if not one-hot)
    Bytes key;                ///< K1||K2 as used, when valid
    std::string key_fp;       ///< fingerprint of `key` (of the would-be key if invalid)
    bool key_is_zero() const;
};

/// The effect of one MMIO write, as the event log would record it (header fields left default).
using Effect = events::Body;

/// How the request moves data (docs/device.md "Errors").
enum class CommandKind {
    read,           ///< READ(6/10/12/16): decrypt medium -> host
    write,          ///< WRITE(6/10/12/16), WRITE AND VERIFY(10/12/16): encrypt host -> medium
    other_data_out, ///< WRITE SAME etc.: the engine cannot encrypt it; CE=1 -> OCS 0x9 "opcode"
    other,          ///< non-data or data-in that is not READ: executed without crypto
};

struct Request {
    bool ce = false;
    unsigned cci = 0;
    std::uint64_t dun = 0;
    std::uint64_t offset = 0; ///< byte offset of the transfer on the LU (lba * block size)
    std::uint64_t length = 0; ///< bytes transferred
    CommandKind kind = CommandKind::read;
};

/// The `io` event error causes (the schema's, events.hpp). The engine model predicts cge, cci,
/// disarmed, invalid, align, injected and opcode; no-prdt, dma and cipher depend on the host's
/// buffers and the cipher library, which it does not model.
using events::IoError;
using events::to_string;

struct Outcome {
    std::uint8_t ocs = kOcsSuccess;
    IoError error = IoError::none;
    bool transfers = true;    ///< data moved (false: nothing reaches the medium / host)
    bool crypto = false;      ///< data units are transformed with the slot's key
    std::uint32_t dusize = 0; ///< the slot's data unit if it holds a valid config, else 0
    std::string key_fp;       ///< the slot's key fingerprint if valid, else ""
    bool fatal = false;       ///< an injected fault that also raises IS.CEFES
};

class Engine {
public:
    explicit Engine(Config cfg); ///< throws std::invalid_argument on a bad config
    const Config& config() const { return cfg_; }

    /// BAR0 size the device needs: pow2ceil(0x2000 + slots*0x80) (docs/device.md).
    std::uint32_t bar_size() const;

    /// A 32-bit MMIO write; returns the events the device must log for it (in order).
    std::vector<Effect> write(std::uint32_t offset, std::uint32_t value);
    /// A 32-bit MMIO read of a crypto-related register (others read 0 here).
    std::uint32_t read(std::uint32_t offset) const;

    /// Device reset: HCE=0, CGE=0, every slot cleared; returns the wipe event (reason reset),
    /// which the device logs only when at least one slot was armed.
    std::vector<Effect> reset();

    /// Arms the next `count` CE data commands to fail with OCS 0xA (crypto-fault-count).
    void inject_faults(std::uint32_t count, bool fatal = false);
    std::uint32_t faults_remaining() const { return faults_; }

    /// The outcome of a data command; consumes an injected fault when one fires.
    Outcome submit(const Request& req);
    /// Bytes that must land on the medium for a WRITE with outcome `o` (ciphertext for CE).
    Bytes medium_bytes(const Request& req, const Outcome& o, ByteView host_data) const;
    /// Bytes the host must read back for a READ of `medium` (plaintext for CE).
    Bytes host_bytes(const Request& req, const Outcome& o, ByteView medium) const;

    /// The `io` event fields the model predicts for a request (lun/opcode/lba/... left 0).
    events::Io predict_io(const Request& req, const Outcome& o) const;

    bool enabled() const { return hce_on_; }
    bool cge() const { return cge_; }
    const Slot& slot(unsigned s) const { return slots_.at(s); }
    unsigned armed_count() const;
    /// The predicted `realize` event.
    events::Realize realize_event() const;

private:
    Effect program(unsigned s);
    void wipe_slots();

    Config cfg_;
    std::vector<Slot> slots_;
    bool hce_on_ = false;
    bool cge_ = false;
    std::uint32_t faults_ = 0;
    bool faults_fatal_ = false;
    std::optional<std::uint32_t> last_cfg_write_; ///< offset of the last keyslot-window write
};

/// Replays one controller's event log through the register semantics above, for a checker that
/// sees only the log: it keeps the slot table from `enable`/`wipe`/`program`/`evict`/`disarm`
/// events and reports every event that contradicts the model (a program whose ok/error does
/// not follow from the advertised caps, an evict/wipe whose was_armed/armed count is wrong, a
/// missing wipe on HCE 1->0, a `fault` not directly followed by its `io`, an `io` whose OCS,
/// error, status, data unit size or key fingerprint is not what the slot table implies).
///
/// Hardware-wrapped keys (docs/device.md "Hardware-wrapped keys"; realize `wrapped_keys`): a
/// `program` with `wrapped` true arms its slot like a raw one (the slot table keeps its key_fp,
/// the inline key's); it exists only on a device with the key manager, only for a successful
/// PROGRAM (`ok` true), and only for an AES-256-XTS capability whose SDUSB has the data unit
/// (the key manager refuses anything else with `config` before a slot changes). On a
/// wrapped-only device (realize `raw_keys` false) every raw CFGE=1 write fails with `key-type`
/// (before the config checks: the device refuses the key type whatever the config says). `km`
/// events on a device without the key manager are mismatches; their pairing with `program`
/// events and their fingerprints are icemu-check's invariants 9 and 10.
class LogReplay {
public:
    struct Mismatch {
        std::uint64_t seq = 0;
        std::string what;
    };

    explicit LogReplay(const events::Realize& realize);
    void apply(const events::Event& e);
    /// Call after the last event: reports a wipe or an io still expected at the end of the log.
    void finish();
    /// A machine reset the log may not show (QMP system_reset: the device logs its `wipe` only
    /// when a slot was armed): every slot is cleared, the controller is off, and nothing is
    /// expected any more (a pending wipe or fault io). Mismatches found so far are kept.
    void reset();

    const std::vector<Mismatch>& mismatches() const { return mismatches_; }

    struct SlotView {
        bool armed = false;
        bool valid = false;
        std::uint32_t dusize = 0;
        std::string key_fp;
    };
    const SlotView& slot(unsigned s) const { return slots_.at(s); }
    bool cge() const { return cge_; }

private:
    void mismatch(std::uint64_t seq, std::string what);
    void check_io(std::uint64_t seq, const events::Io& io);
    void check_wrapped_program(std::uint64_t seq, const events::Program& p, const CryptoCap* cap);

    std::vector<CryptoCap> caps_;
    bool wipe_on_disable_ = false;
    bool wrapped_keys_ = false; ///< realize `wrapped_keys`: the key manager is present
    bool raw_keys_ = true;      ///< realize `raw_keys` (absent: raw keys accepted)
    bool cqhci_ = false; ///< realize "frontend": "cqhci" (eMMC CQHCI: data tasks are CMD46/47)
    std::vector<SlotView> slots_;
    bool on_ = false;
    bool cge_ = false;
    bool expect_wipe_ = false;
    std::uint64_t expect_wipe_seq_ = 0;
    bool fault_pending_ = false; ///< a `fault` line must be directly followed by its `io`
    std::vector<Mismatch> mismatches_;
};

} // namespace icemu::models::ufshci
