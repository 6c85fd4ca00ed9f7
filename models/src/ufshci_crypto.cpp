// UFSHCI crypto register semantics (see ufshci_crypto.hpp for the rules and their sources).
#include "icemu/models/ufshci_crypto.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <stdexcept>

namespace icemu::models::ufshci {

unsigned key_bits(KeySize ks) {
    switch (ks) {
    case KeySize::k128:
        return 128;
    case KeySize::k192:
        return 192;
    case KeySize::k256:
        return 256;
    case KeySize::k512:
        return 512;
    case KeySize::invalid:
        break;
    }
    return 0;
}

std::uint32_t CryptoCap::encode() const {
    std::uint32_t r = 0;
    r = set_field(FieldId::cap_algid, r, static_cast<std::uint32_t>(algid));
    r = set_field(FieldId::cap_sdusb, r, sdusb);
    r = set_field(FieldId::cap_ks, r, static_cast<std::uint32_t>(ks));
    return r;
}

CryptoCap CryptoCap::decode(std::uint32_t reg) {
    CryptoCap c;
    c.algid = static_cast<AlgId>(get_field(FieldId::cap_algid, reg));
    c.sdusb = static_cast<std::uint8_t>(get_field(FieldId::cap_sdusb, reg));
    c.ks = static_cast<KeySize>(get_field(FieldId::cap_ks, reg));
    return c;
}

bool CryptoCap::implemented() const {
    return algid == AlgId::aes_xts && (ks == KeySize::k128 || ks == KeySize::k256);
}

bool CryptoCap::allows_data_unit(std::uint32_t bytes) const {
    const std::uint32_t code = dusize_code(bytes);
    return code != 0 && (sdusb & code) != 0;
}

std::uint32_t dusize_bytes(std::uint32_t dusize_code_value) {
    if (dusize_code_value == 0 || !std::has_single_bit(dusize_code_value) ||
        dusize_code_value > 0x80) {
        return 0;
    }
    return 512u * dusize_code_value;
}

std::uint32_t dusize_code(std::uint32_t bytes) {
    if (bytes < 512 || bytes % 512 != 0 || !std::has_single_bit(bytes / 512) ||
        bytes / 512 > 0x80) {
        return 0;
    }
    return bytes / 512;
}

namespace {

struct AlgName {
    std::string_view name;
    AlgId id;
};
constexpr AlgName kAlgNames[] = {
    {"aes-xts", AlgId::aes_xts},
    {"bitlocker-aes-cbc", AlgId::bitlocker_aes_cbc},
    {"aes-ecb", AlgId::aes_ecb},
    {"essiv-aes-cbc", AlgId::essiv_aes_cbc},
};

struct KsName {
    std::string_view bits;
    KeySize ks;
};
constexpr KsName kKsNames[] = {
    {"128", KeySize::k128}, {"192", KeySize::k192}, {"256", KeySize::k256}, {"512", KeySize::k512}};

CryptoCap parse_one_cap(std::string_view item) {
    const auto bad = [&](const std::string& why) {
        return std::invalid_argument("crypto-caps entry \"" + std::string(item) + "\": " + why);
    };
    const auto colon = item.find(':');
    if (colon == std::string_view::npos) {
        throw bad("expected ALG-KEYBITS:SDUSB");
    }
    const std::string_view algks = item.substr(0, colon);
    std::string_view mask = item.substr(colon + 1);
    const auto dash = algks.rfind('-');
    if (dash == std::string_view::npos) {
        throw bad("expected ALG-KEYBITS");
    }
    CryptoCap cap;
    bool alg_found = false;
    for (const auto& a : kAlgNames) {
        if (a.name == algks.substr(0, dash)) {
            cap.algid = a.id;
            alg_found = true;
        }
    }
    if (!alg_found) {
        throw bad("unknown algorithm");
    }
    bool ks_found = false;
    for (const auto& k : kKsNames) {
        if (k.bits == algks.substr(dash + 1)) {
            cap.ks = k.ks;
            ks_found = true;
        }
    }
    if (!ks_found) {
        throw bad("key size must be 128, 192, 256 or 512");
    }
    int base = 10;
    if (mask.starts_with("0x") || mask.starts_with("0X")) {
        mask.remove_prefix(2);
        base = 16;
    }
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(mask.data(), mask.data() + mask.size(), value, base);
    if (mask.empty() || ec != std::errc() || ptr != mask.data() + mask.size() || value > 0xff) {
        throw bad("SDUSB must be an 8-bit number");
    }
    cap.sdusb = static_cast<std::uint8_t>(value);
    return cap;
}

} // namespace

std::vector<CryptoCap> parse_crypto_caps(std::string_view text) {
    if (text.empty()) {
        throw std::invalid_argument("crypto-caps is empty");
    }
    std::vector<CryptoCap> caps;
    std::size_t pos = 0;
    while (true) {
        const auto slash = text.find('/', pos);
        caps.push_back(parse_one_cap(text.substr(pos, slash - pos)));
        if (slash == std::string_view::npos) {
            break;
        }
        pos = slash + 1;
    }
    if (caps.size() > kMaxCaps) {
        throw std::invalid_argument("too many crypto-caps entries");
    }
    return caps;
}

std::string format_crypto_caps(const std::vector<CryptoCap>& caps) {
    std::string out;
    for (const auto& c : caps) {
        if (!out.empty()) {
            out += '/';
        }
        std::string_view alg = "?";
        for (const auto& a : kAlgNames) {
            if (a.id == c.algid) {
                alg = a.name;
            }
        }
        out += alg;
        out += '-';
        out += std::to_string(key_bits(c.ks));
        static constexpr char digits[] = "0123456789abcdef";
        out += ":0x";
        out += digits[c.sdusb >> 4];
        out += digits[c.sdusb & 0xf];
    }
    return out;
}

bool Slot::key_is_zero() const {
    for (unsigned i = 0; i < kCfgKeyDwords; ++i) {
        if (dw[i] != 0) {
            return false;
        }
    }
    return true;
}

Engine::Engine(Config cfg) : cfg_(std::move(cfg)) {
    if (cfg_.slots < 1 || cfg_.slots > kMaxSlots) {
        throw std::invalid_argument("keyslots must be 1..256, got " + std::to_string(cfg_.slots));
    }
    if (cfg_.caps.size() > kMaxCaps) {
        throw std::invalid_argument("too many crypto capabilities");
    }
    slots_.resize(cfg_.slots);
}

std::uint32_t Engine::bar_size() const {
    return std::bit_ceil(kCfgBase + cfg_.slots * kCfgSlotBytes);
}

unsigned Engine::armed_count() const {
    unsigned n = 0;
    for (const auto& s : slots_) {
        n += s.armed ? 1u : 0u;
    }
    return n;
}

void Engine::wipe_slots() {
    for (auto& s : slots_) {
        s = Slot{};
    }
    last_cfg_write_.reset();
}

namespace {

std::array<std::uint8_t, 64> cryptokey_bytes(const Slot& s) {
    std::array<std::uint8_t, 64> ck{};
    for (unsigned i = 0; i < kCfgKeyDwords; ++i) {
        for (unsigned b = 0; b < 4; ++b) {
            ck[4 * i + b] = static_cast<std::uint8_t>(s.dw[i] >> (8 * b)); // little-endian dword
        }
    }
    return ck;
}

} // namespace

Effect Engine::program(unsigned s) {
    Slot& slot = slots_[s];
    const std::uint32_t d16 = slot.dw[kCfgDwordDu];
    slot.armed = true;
    slot.capidx = get_field(FieldId::cfg_capidx, d16);
    slot.dusize = dusize_bytes(get_field(FieldId::cfg_dusize, d16));
    slot.error = ProgramError::none;
    slot.key.clear();

    const auto ck = cryptokey_bytes(slot);
    const CryptoCap* cap = slot.capidx < cfg_.caps.size() ? &cfg_.caps[slot.capidx] : nullptr;
    // Validation order of docs/device.md "Register map": CAPIDX, DUSIZE, algorithm, key size.
    if (cap == nullptr) {
        slot.error = ProgramError::capidx;
    } else if (slot.dusize == 0 || !cap->allows_data_unit(slot.dusize)) {
        slot.error = ProgramError::dusize;
    } else if (cap->algid != AlgId::aes_xts) {
        slot.error = ProgramError::alg;
    } else if (cap->ks != KeySize::k128 && cap->ks != KeySize::k256) {
        slot.error = ProgramError::key_size;
    }
    Bytes used_key; // the key as the engine would use it; empty when the layout is unknown
    if (cap != nullptr && cap->implemented()) {
        used_key = xts_key_from_cryptokey(ck, key_bits(cap->ks));
        slot.key_fp = key_fingerprint(used_key);
        if (slot.error == ProgramError::none) {
            slot.key = used_key;
        }
    } else {
        slot.key_fp.clear(); // event-log.md: "" on a capidx, alg or key-size error
    }

    events::Program ev;
    ev.slot = s;
    ev.capidx = slot.capidx;
    ev.dusize = slot.dusize;
    ev.key_fp = slot.key_fp;
    ev.ok = slot.error == ProgramError::none;
    ev.error = std::string(to_string(slot.error));
    if (cfg_.log_keys && !used_key.empty()) {
        ev.key = to_hex(used_key);
    }
    return ev;
}

std::vector<Effect> Engine::write(std::uint32_t offset, std::uint32_t value) {
    std::vector<Effect> out;
    if (offset == kRegHce) {
        const bool on = (value & kHceEnable) != 0;
        const bool cge = (value & kHceCge) != 0;
        const bool was_on = hce_on_;
        if (on != hce_on_ || cge != cge_) {
            out.emplace_back(events::Enable{on, cge});
        }
        hce_on_ = on;
        cge_ = cge;
        if (was_on && !on && cfg_.wipe_on_disable) {
            out.emplace_back(events::Wipe{events::WipeReason::disable, armed_count()});
            wipe_slots();
        }
        return out;
    }
    if (offset < kCfgBase || offset % 4 != 0) {
        return out; // CAP, CCAP, x-CRYPTOCAP are read-only; other registers are not modelled
    }
    const std::uint32_t s = (offset - kCfgBase) / kCfgSlotBytes;
    if (s >= cfg_.slots) {
        return out;
    }
    const unsigned dword = (offset - kCfgBase) % kCfgSlotBytes / 4;
    Slot& slot = slots_[s];
    const bool after_dw17 = last_cfg_write_ == cfg_offset(s, kCfgDwordVsb);
    last_cfg_write_ = offset;
    slot.dw[dword] = value;
    if (dword != kCfgDwordDu) {
        return out; // key and dwords 17..31 are stored; an armed key is not changed by them
    }
    if (get_field(FieldId::cfg_cfge, value) != 0) {
        out.push_back(program(s));
        return out;
    }
    const bool was_armed = slot.armed;
    if (after_dw17 && slot.key_is_zero()) {
        out.emplace_back(events::Evict{s, was_armed});
    } else if (was_armed) {
        out.emplace_back(events::Disarm{s});
    }
    slot.armed = false;
    slot.error = ProgramError::none;
    slot.key.clear();
    slot.key_fp.clear();
    slot.dusize = 0;
    slot.capidx = 0;
    return out;
}

std::uint32_t Engine::read(std::uint32_t offset) const {
    if (offset == kRegCap) {
        return kCapCs;
    }
    if (offset == kRegHce) {
        return (hce_on_ ? kHceEnable : 0u) | (cge_ ? kHceCge : 0u);
    }
    if (offset == kRegCcap) {
        std::uint32_t r = 0;
        r = set_field(FieldId::ccap_cc, r, static_cast<std::uint32_t>(cfg_.caps.size()));
        r = set_field(FieldId::ccap_cfgc, r, cfg_.slots - 1);
        r = set_field(FieldId::ccap_cfgptr, r, kCfgPtr);
        return r;
    }
    if (offset >= kRegCryptoCap0 && offset < kRegCryptoCap0 + 4 * cfg_.caps.size() &&
        offset % 4 == 0) {
        return cfg_.caps[(offset - kRegCryptoCap0) / 4].encode();
    }
    if (offset >= kCfgBase && offset % 4 == 0) {
        const std::uint32_t s = (offset - kCfgBase) / kCfgSlotBytes;
        const unsigned dword = (offset - kCfgBase) % kCfgSlotBytes / 4;
        if (s < cfg_.slots && dword >= kCfgKeyDwords) {
            return slots_[s].dw[dword];
        }
    }
    return 0;
}

std::vector<Effect> Engine::reset() {
    std::vector<Effect> out;
    const unsigned armed = armed_count();
    if (armed > 0) { // event-log.md: a reset wipe is logged only when a slot was armed
        out.emplace_back(events::Wipe{events::WipeReason::reset, armed});
    }
    wipe_slots();
    hce_on_ = false;
    cge_ = false;
    return out;
}

void Engine::inject_faults(std::uint32_t count, bool fatal) {
    faults_ = count;
    faults_fatal_ = fatal;
}

Outcome Engine::submit(const Request& req) {
    Outcome o;
    if (!req.ce || req.kind == CommandKind::other) {
        return o; // plaintext path; CE on non-data/non-READ commands is ignored (device.md)
    }
    // The io event reports the slot's data unit and key whenever the slot holds a valid config,
    // whatever the outcome (event-log.md `io`).
    if (req.cci < cfg_.slots && slots_[req.cci].valid()) {
        o.dusize = slots_[req.cci].dusize;
        o.key_fp = slots_[req.cci].key_fp;
    }
    const auto fail = [&](IoError e) {
        o.ocs = kOcsInvalidCryptoConfig;
        o.error = e;
        o.transfers = false;
        return o;
    };
    // Check order of docs/device.md "Errors": opcode, injected fault, CGE, CCI, disarmed,
    // invalid, alignment.
    if (req.kind == CommandKind::other_data_out) {
        return fail(IoError::opcode);
    }
    if (faults_ > 0) {
        --faults_;
        o.ocs = kOcsGeneralCryptoError;
        o.error = IoError::injected;
        o.transfers = false;
        o.fatal = faults_fatal_;
        return o;
    }
    if (!cge_) {
        return fail(IoError::cge);
    }
    if (req.cci >= cfg_.slots) {
        return fail(IoError::cci);
    }
    const Slot& slot = slots_[req.cci];
    if (!slot.armed) {
        return fail(IoError::disarmed);
    }
    if (!slot.valid()) {
        return fail(IoError::invalid);
    }
    if (req.offset % slot.dusize != 0 || req.length % slot.dusize != 0) {
        return fail(IoError::align);
    }
    o.crypto = true;
    return o;
}

Bytes Engine::medium_bytes(const Request& req, const Outcome& o, ByteView host_data) const {
    if (!o.transfers) {
        return {};
    }
    if (!o.crypto) {
        return Bytes(host_data.begin(), host_data.end());
    }
    return xts_encrypt(slots_.at(req.cci).key, req.dun, o.dusize, host_data);
}

Bytes Engine::host_bytes(const Request& req, const Outcome& o, ByteView medium) const {
    if (!o.transfers) {
        return {};
    }
    if (!o.crypto) {
        return Bytes(medium.begin(), medium.end());
    }
    return xts_decrypt(slots_.at(req.cci).key, req.dun, o.dusize, medium);
}

events::Io Engine::predict_io(const Request& req, const Outcome& o) const {
    events::Io io;
    io.ce = req.ce;
    io.slot = req.ce ? static_cast<int>(req.cci) : -1;
    io.op = req.kind == CommandKind::read ? events::IoOp::read : events::IoOp::write;
    io.bytes = o.transfers ? req.length : 0;
    io.dun = req.ce ? req.dun : 0;
    io.dusize = req.ce ? o.dusize : 0;
    io.key_fp = req.ce ? o.key_fp : "";
    io.ocs = o.ocs;
    io.status = o.transfers ? 0 : -1; // -1: never issued to the LU
    io.error = std::string(to_string(o.error));
    return io;
}

events::Realize Engine::realize_event() const {
    events::Realize r;
    r.slots = cfg_.slots;
    r.cfgptr = kCfgPtr;
    for (std::size_t i = 0; i < cfg_.caps.size(); ++i) {
        const auto& c = cfg_.caps[i];
        r.caps.push_back(events::CapEntry{static_cast<unsigned>(i), static_cast<unsigned>(c.algid),
                                          c.sdusb, static_cast<unsigned>(c.ks)});
    }
    r.wipe_on_disable = cfg_.wipe_on_disable;
    r.log_keys = cfg_.log_keys;
    r.frontend = "ufs";
    return r;
}

} // namespace icemu::models::ufshci

namespace icemu::models::ufshci {

LogReplay::LogReplay(const events::Realize& realize)
    : wipe_on_disable_(realize.wipe_on_disable),
      wrapped_keys_(realize.wrapped_keys.value_or(false)), raw_keys_(realize.accepts_raw_keys()),
      cqhci_(realize.frontend == "cqhci"), slots_(realize.slots) {
    for (const auto& c : realize.caps) {
        caps_.push_back(CryptoCap{static_cast<AlgId>(c.algid), static_cast<std::uint8_t>(c.sdusb),
                                  static_cast<KeySize>(c.ks)});
    }
}

void LogReplay::mismatch(std::uint64_t seq, std::string what) {
    mismatches_.push_back(Mismatch{seq, std::move(what)});
}

namespace {
// Appends instead of `"\"" + std::string(s) + "\""`: GCC 12 at -O3 reports a false
// -Wrestrict overlap in the inlined operator+(const char*, string&&).
std::string q(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    out += s;
    out += '"';
    return out;
}
} // namespace

void LogReplay::apply(const events::Event& e) {
    const std::uint64_t seq = e.seq;
    if (fault_pending_ && !std::holds_alternative<events::Io>(e.body)) {
        mismatch(seq, "a fault event must be directly followed by the io it failed");
        fault_pending_ = false;
    }
    if (expect_wipe_ && !std::holds_alternative<events::Wipe>(e.body)) {
        mismatch(expect_wipe_seq_, "HCE 1->0 with wipe-on-disable was not followed by a wipe");
        expect_wipe_ = false;
    }
    std::visit(
        [&](const auto& b) {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, events::Enable>) {
                if (on_ && !b.on && wipe_on_disable_) {
                    expect_wipe_ = true;
                    expect_wipe_seq_ = seq;
                }
                on_ = b.on;
                cge_ = b.cge;
            } else if constexpr (std::is_same_v<T, events::Wipe>) {
                unsigned armed = 0;
                for (auto& s : slots_) {
                    armed += s.armed ? 1u : 0u;
                    s = SlotView{};
                }
                if (armed != b.armed) {
                    mismatch(seq, "wipe reports " + std::to_string(b.armed) +
                                      " armed slots, the model has " + std::to_string(armed));
                }
                if (expect_wipe_ && b.reason != events::WipeReason::disable) {
                    mismatch(seq,
                             "wipe after HCE 1->0 has reason " + q(events::to_string(b.reason)));
                }
                expect_wipe_ = false;
            } else if constexpr (std::is_same_v<T, events::Program>) {
                if (b.slot >= slots_.size()) {
                    mismatch(seq, "program of slot " + std::to_string(b.slot) + " >= slots");
                    return;
                }
                ProgramError want = ProgramError::none;
                const CryptoCap* cap = b.capidx < caps_.size() ? &caps_[b.capidx] : nullptr;
                if (b.is_wrapped()) {
                    check_wrapped_program(seq, b, cap);
                } else if (!raw_keys_) {
                    want = ProgramError::key_type;
                } else if (cap == nullptr) {
                    want = ProgramError::capidx;
                } else if (b.dusize == 0 || !cap->allows_data_unit(b.dusize)) {
                    want = ProgramError::dusize;
                } else if (cap->algid != AlgId::aes_xts) {
                    want = ProgramError::alg;
                } else if (cap->ks != KeySize::k128 && cap->ks != KeySize::k256) {
                    want = ProgramError::key_size;
                }
                // "cipher" is a device-internal failure the model cannot predict: accept it.
                if (!b.is_wrapped() && b.error != to_string(want) &&
                    !(want == ProgramError::none && !b.ok && b.error == "cipher")) {
                    mismatch(seq, "program of slot " + std::to_string(b.slot) + " logged " +
                                      (b.ok ? std::string("ok") : "error " + q(b.error)) +
                                      ", the model expects " +
                                      (want == ProgramError::none ? std::string("ok")
                                                                  : "error " + q(to_string(want))));
                }
                SlotView& s = slots_[b.slot];
                s.armed = true;
                s.valid = b.ok;
                s.dusize = b.dusize;
                s.key_fp = b.key_fp;
            } else if constexpr (std::is_same_v<T, events::Evict>) {
                if (b.slot >= slots_.size()) {
                    mismatch(seq, "evict of slot " + std::to_string(b.slot) + " >= slots");
                    return;
                }
                if (b.was_armed != slots_[b.slot].armed) {
                    mismatch(seq, "evict of slot " + std::to_string(b.slot) +
                                      " reports was_armed=" + (b.was_armed ? "true" : "false"));
                }
                slots_[b.slot] = SlotView{};
            } else if constexpr (std::is_same_v<T, events::Disarm>) {
                if (b.slot >= slots_.size() || !slots_[b.slot].armed) {
                    mismatch(seq,
                             "disarm of slot " + std::to_string(b.slot) + ", which is not armed");
                    return;
                }
                slots_[b.slot] = SlotView{};
            } else if constexpr (std::is_same_v<T, events::Fault>) {
                fault_pending_ = true;
            } else if constexpr (std::is_same_v<T, events::Io>) {
                check_io(seq, b);
            } else if constexpr (std::is_same_v<T, events::Realize>) {
                mismatch(seq, "realize in the middle of a log");
            } else if constexpr (std::is_same_v<T, events::Km>) {
                if (!wrapped_keys_) {
                    mismatch(seq, "km event on a device without the key manager (realize has no "
                                  "\"wrapped_keys\": true)");
                }
            }
        },
        e.body);
}

namespace {
// The commands the engine transforms (SCSI SBC-4 opcodes): READ and WRITE (6/10/12/16), and
// WRITE AND VERIFY (10/12/16), which moves its data out like WRITE (docs/device.md "Errors").
bool is_read_write(unsigned opcode) {
    switch (opcode) {
    case 0x08: // READ(6)
    case 0x28: // READ(10)
    case 0xa8: // READ(12)
    case 0x88: // READ(16)
    case 0x0a: // WRITE(6)
    case 0x2a: // WRITE(10)
    case 0xaa: // WRITE(12)
    case 0x8a: // WRITE(16)
    case 0x2e: // WRITE AND VERIFY(10)
    case 0xae: // WRITE AND VERIFY(12)
    case 0x8e: // WRITE AND VERIFY(16)
        return true;
    default:
        return false;
    }
}
} // namespace

void LogReplay::check_wrapped_program(std::uint64_t seq, const events::Program& p,
                                      const CryptoCap* cap) {
    const std::string what = "wrapped program of slot " + std::to_string(p.slot);
    if (!wrapped_keys_) {
        mismatch(seq, what + " on a device without the key manager");
    }
    if (!p.ok) {
        mismatch(seq, what + " logged error " + q(p.error) +
                          ": the key manager logs a program only for a PROGRAM that succeeded");
        return;
    }
    if (cap == nullptr || cap->algid != AlgId::aes_xts || cap->ks != KeySize::k256 ||
        p.dusize == 0 || !cap->allows_data_unit(p.dusize)) {
        mismatch(seq, what + " with capidx " + std::to_string(p.capidx) + " dusize " +
                          std::to_string(p.dusize) +
                          ": the key manager must refuse it with \"config\" (not an AES-256-XTS "
                          "capability with that data unit)");
    }
}

void LogReplay::check_io(std::uint64_t seq, const events::Io& io) {
    const std::string_view got = io.error;
    const bool after_fault = fault_pending_;
    fault_pending_ = false;
    if (!io.ce) {
        return; // plaintext I/O: nothing the crypto model predicts
    }
    const SlotView* s = io.slot >= 0 && static_cast<std::size_t>(io.slot) < slots_.size()
                            ? &slots_[static_cast<std::size_t>(io.slot)]
                            : nullptr;
    // The io line reports the slot's data unit and key whenever the slot is valid.
    const bool valid = s != nullptr && s->valid;
    if (io.dusize != (valid ? s->dusize : 0) || io.key_fp != (valid ? s->key_fp : "")) {
        mismatch(seq, "crypto I/O on slot " + std::to_string(io.slot) + " reports dusize " +
                          std::to_string(io.dusize) + " key " + q(io.key_fp) +
                          ", the slot table has " + std::to_string(valid ? s->dusize : 0) + " " +
                          q(valid ? s->key_fp : ""));
    }
    if (got == "no-prdt") {
        return; // host-side PRDT problem, checked before any crypto rule
    }
    const bool refused_before_issue = !got.empty() && got != "dma" && got != "cipher";
    if (refused_before_issue && (io.status != -1 || io.bytes != 0)) {
        mismatch(seq, "a refused request must have status -1 and bytes 0");
    }
    // Check order of docs/device.md "Errors".
    // The CQHCI front end only runs CMD46/47 data tasks (EXECUTE_READ/WRITE_TASK) with CE.
    if (!(cqhci_ ? io.opcode == 46 || io.opcode == 47 : is_read_write(io.opcode))) {
        if (got != "opcode" || io.ocs != kOcsInvalidCryptoConfig) {
            mismatch(seq, "CE on opcode " + std::to_string(io.opcode) +
                              " must be refused with OCS 9 error \"opcode\"");
        }
        return;
    }
    if (got == "injected" || after_fault) {
        if (!after_fault) {
            mismatch(seq, "I/O failed with an injected fault but no fault event precedes it");
        }
        if (io.ocs != kOcsGeneralCryptoError || got != "injected") {
            mismatch(seq, "an injected fault must give OCS 0xA with error \"injected\"");
        }
        return;
    }
    IoError want = IoError::none;
    const std::uint64_t length = io.blocks * io.block_size;
    const std::uint64_t offset = io.lba * io.block_size;
    if (!cge_) {
        want = IoError::cge;
    } else if (s == nullptr) {
        want = IoError::cci;
    } else if (!s->armed) {
        want = IoError::disarmed;
    } else if (!s->valid) {
        want = IoError::invalid;
    } else if (s->dusize == 0 || offset % s->dusize != 0 || length % s->dusize != 0) {
        want = IoError::align;
    }
    if (want == IoError::none) {
        if (got == "dma" || got == "cipher") {
            return; // failures during the transfer: not predicted by the model
        }
        if (io.ocs != kOcsSuccess || !got.empty()) {
            mismatch(seq, "crypto I/O on slot " + std::to_string(io.slot) + " got OCS " +
                              std::to_string(io.ocs) + " error " + q(got) +
                              ", the model expects success");
        }
        return;
    }
    if (io.ocs != kOcsInvalidCryptoConfig || got != to_string(want)) {
        mismatch(seq, "crypto I/O on slot " + std::to_string(io.slot) + " got OCS " +
                          std::to_string(io.ocs) + " error " + q(got) +
                          ", the model expects OCS 9 error " + q(to_string(want)));
    }
}

void LogReplay::finish() {
    if (expect_wipe_) {
        mismatch(expect_wipe_seq_, "HCE 1->0 with wipe-on-disable was not followed by a wipe");
        expect_wipe_ = false;
    }
    if (fault_pending_) {
        mismatch(0, "the log ends with a fault event that no io follows");
        fault_pending_ = false;
    }
}

void LogReplay::reset() {
    std::fill(slots_.begin(), slots_.end(), SlotView{});
    on_ = false;
    cge_ = false;
    expect_wipe_ = false;
    fault_pending_ = false;
}

} // namespace icemu::models::ufshci
