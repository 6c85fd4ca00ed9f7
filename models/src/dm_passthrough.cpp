// device-mapper inline-crypto passthrough (see dm_passthrough.hpp for rules and sources).
#include "icemu/models/dm_passthrough.hpp"

#include <algorithm>
#include <climits>
#include <exception>
#include <sstream>

namespace icemu::models::dm {

std::string_view mode_name(Mode m) {
    switch (m) {
    case Mode::aes_256_xts:
        return "AES-256-XTS";
    case Mode::aes_128_cbc_essiv:
        return "AES-128-CBC-ESSIV";
    case Mode::adiantum:
        return "Adiantum";
    case Mode::sm4_xts:
        return "SM4-XTS";
    case Mode::invalid:
        break;
    }
    return "";
}

bool CryptoCaps::empty() const {
    return std::all_of(modes.begin(), modes.end(), [](std::uint32_t m) { return m == 0; });
}

unsigned key_types_of(const events::Realize& r, const KernelRules& v) {
    if (!v.holds("blk-crypto-key-types") || !r.wrapped_keys.value_or(false)) {
        return kKeyTypeRaw;
    }
    return kKeyTypeHwWrapped | (r.accepts_raw_keys() ? kKeyTypeRaw : 0u);
}

CryptoCaps ufs_profile(const std::vector<ufshci::CryptoCap>& caps, unsigned slots,
                       unsigned key_types) {
    CryptoCaps p;
    p.max_dun_bytes = 8;
    p.key_types = key_types;
    p.num_slots = slots;
    for (const auto& c : caps) {
        if (c.algid == ufshci::AlgId::aes_xts && c.ks == ufshci::KeySize::k256) {
            p.modes[static_cast<unsigned>(Mode::aes_256_xts)] |= std::uint32_t{c.sdusb} * 512u;
        }
    }
    return p;
}

CryptoCaps dm_initial_caps() {
    CryptoCaps p;
    p.modes.fill(0xffffffffu);
    p.max_dun_bytes = UINT_MAX;
    p.key_types = ~0u;
    p.num_slots = 0;
    return p;
}

void intersect(CryptoCaps& parent, const Profile& child) {
    if (!child) {
        parent.max_dun_bytes = 0;
        parent.modes.fill(0);
        parent.key_types = 0;
        return;
    }
    parent.max_dun_bytes = std::min(parent.max_dun_bytes, child->max_dun_bytes);
    for (unsigned i = 0; i < kNumModes; ++i) {
        parent.modes[i] &= child->modes[i];
    }
    parent.key_types &= child->key_types;
}

bool has_capabilities(const Profile& target, const Profile& reference, const KernelRules& v) {
    if (!reference) {
        return true;
    }
    if (!target) {
        return false;
    }
    for (unsigned i = 0; i < kNumModes; ++i) {
        if ((reference->modes[i] & ~target->modes[i]) != 0) {
            return false;
        }
    }
    if (reference->max_dun_bytes > target->max_dun_bytes) {
        return false;
    }
    if (v.holds("dm-reload-compares-key-types") &&
        (reference->key_types & ~target->key_types) != 0) {
        return false;
    }
    return true;
}

bool passes_crypto(std::string_view type, const KernelRules& v) {
    if (type == "linear") {
        return v.holds("dm-passthrough-linear");
    }
    if (type == "flakey") {
        return v.holds("dm-passthrough-flakey");
    }
    if (type == "striped") {
        return v.holds("dm-passthrough-striped");
    }
    if (type == "thin-pool" || type == "thin") {
        return v.holds("dm-passthrough-thin");
    }
    return false;
}

CryptoCaps construct_caps(const Table& t, const DeviceProfiles& devices, const KernelRules& v) {
    CryptoCaps p = dm_initial_caps();
    for (const auto& target : t.targets) {
        if (!passes_crypto(target.type, v)) {
            intersect(p, std::nullopt);
            break;
        }
        for (const auto& dev : target.devices) {
            intersect(p, devices.at(dev));
        }
    }
    return p;
}

namespace {
// The device tokens a target's iterate_devices yields (see Segment).
std::vector<std::string> device_tokens(const std::string& type,
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
} // namespace

Segment parse_segment(std::uint64_t start, std::uint64_t len, std::string type,
                      std::string_view params) {
    Segment s;
    s.start = start;
    s.len = len;
    s.type = std::move(type);
    std::istringstream ps{std::string(params)};
    std::vector<std::string> toks;
    for (std::string w; ps >> w;) {
        toks.push_back(w);
    }
    s.device_tokens = device_tokens(s.type, toks);
    // delay with one device group maps reads and writes like linear
    if ((s.type == "linear" || s.type == "flakey" || (s.type == "delay" && toks.size() == 3)) &&
        toks.size() >= 2) {
        try {
            s.offset = std::stoull(toks[1]);
            s.dev = toks[0];
        } catch (const std::exception&) {
            s.offset = 0; // not a "DEV OFFSET": not mapped
        }
    } else if (s.type == "inlinecrypt" && toks.size() >= 5 && toks[1][0] != ':') {
        // a ':'-prefixed key is a keyring reference: no key bytes to model
        try {
            Segment::InlineCrypt ic;
            ic.key = from_hex(toks[1]);
            ic.iv_offset = std::stoull(toks[2]);
            const std::uint64_t offset = std::stoull(toks[4]);
            for (std::size_t k = 6; k < toks.size(); ++k) {
                if (toks[k].rfind("sector_size:", 0) == 0) {
                    const unsigned long ss = std::stoul(toks[k].substr(12));
                    while ((1ul << ic.sector_bits) < ss && ic.sector_bits < 12) {
                        ++ic.sector_bits;
                    }
                }
            }
            if (!ic.key.empty()) {
                s.dev = toks[3];
                s.offset = offset;
                s.inline_crypt = std::move(ic);
            }
        } catch (const std::exception&) {
            // unparsable: not modelled
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
    return s;
}

std::vector<MappedRange> map_bytes(const Segment& s, std::uint64_t off, std::uint64_t len) {
    std::vector<MappedRange> out;
    const std::uint64_t a = s.start * 512, b = (s.start + s.len) * 512;
    const std::uint64_t lo = std::max(off, a), hi = std::min(off + len, b);
    if (lo >= hi) {
        return out;
    }
    if (s.type == "striped" && s.chunk && !s.stripes.empty()) {
        // dm-stripe stripe_map_sector: chunk = x / chunk_size; stripe = chunk % n; the device
        // sector is stripe start + (chunk / n) * chunk_size + x % chunk_size.
        const std::uint64_t cb = s.chunk * 512, n = s.stripes.size();
        for (std::uint64_t x = lo - a; x < hi - a;) {
            const std::uint64_t chunk = x / cb, in = x % cb;
            const std::uint64_t piece = std::min(cb - in, hi - a - x);
            const auto& [dev, dstart] = s.stripes[chunk % n];
            out.push_back({dev, dstart * 512 + (chunk / n) * cb + in, piece, a + x});
            x += piece;
        }
    } else if ((s.type == "linear" || s.type == "flakey" || s.type == "delay") && !s.dev.empty()) {
        out.push_back({s.dev, lo - a + s.offset * 512, hi - lo, lo});
    }
    return out;
}

SysfsCrypto sysfs_view(const Profile& p, bool dir_present, const KernelRules& v) {
    SysfsCrypto s;
    s.present = dir_present && p.has_value();
    if (!s.present) {
        return s;
    }
    s.max_dun_bits = 8 * p->max_dun_bytes;
    s.num_keyslots = p->num_slots;
    for (unsigned i = 1; i < kNumModes; ++i) {
        if (p->modes[i] != 0) {
            s.modes[std::string(mode_name(static_cast<Mode>(i)))] = p->modes[i];
        }
    }
    if (v.holds("sysfs-key-type-files")) {
        s.raw_keys = (p->key_types & kKeyTypeRaw) != 0;
        s.hw_wrapped_keys = (p->key_types & kKeyTypeHwWrapped) != 0;
    }
    return s;
}

int DmDevice::load(const Table& t, const DeviceProfiles& devices) {
    const CryptoCaps caps = construct_caps(t, devices, version_);
    if (!has_capabilities(caps, queue_profile_, version_)) {
        return -kEINVAL; // "Inline encryption capabilities of new DM table were more restrictive"
    }
    const Profile profile = caps.empty() ? Profile{} : Profile{caps};
    if (!loaded_once_) {
        // dm_setup_md_queue: the first table's restrictions go to the queue before add_disk.
        loaded_once_ = true;
        queue_profile_ = profile;
        sysfs_dir_ = profile.has_value();
    }
    inactive_ = t;
    inactive_profile_ = profile;
    return 0;
}

bool DmDevice::resume() {
    if (!inactive_) {
        return false;
    }
    live_ = std::move(inactive_);
    inactive_.reset();
    if (inactive_profile_) {
        // dm_update_crypto_profile: register if none yet, else copy the (wider) capabilities.
        const unsigned slots = queue_profile_ ? queue_profile_->num_slots : 0;
        queue_profile_ = inactive_profile_;
        queue_profile_->num_slots = slots;
    }
    inactive_profile_.reset();
    return true;
}

std::vector<std::string> DmDevice::evict_fanout() const {
    std::vector<std::string> out;
    if (!live_) {
        return out;
    }
    for (const auto& target : live_->targets) {
        out.insert(out.end(), target.devices.begin(), target.devices.end());
    }
    return out;
}

} // namespace icemu::models::dm
