#include "modelled_rig.hpp"

#include <sstream>

namespace icemu::test {
namespace {

constexpr std::uint8_t kReadFill = 0xa5; // what UfsHost puts in read buffers beforehand

std::string hex(std::uint64_t v) {
    std::ostringstream os;
    os << "0x" << std::hex << v;
    return os.str();
}

std::vector<ControllerSpec> controller_specs(const std::vector<CryptoControllerSpec>& specs) {
    std::vector<ControllerSpec> out;
    for (const auto& s : specs) {
        out.push_back(s.ctrl);
    }
    return out;
}

std::string first_difference(std::span<const std::uint8_t> got,
                             std::span<const std::uint8_t> want) {
    if (got.size() != want.size()) {
        return "length " + std::to_string(got.size()) + " != expected " +
               std::to_string(want.size());
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] != want[i]) {
            return "first difference at byte " + std::to_string(i) + ": got " + hex(got[i]) +
                   ", expected " + hex(want[i]);
        }
    }
    return {};
}

} // namespace

std::string crypto_props(const mu::Config& cfg) {
    return "crypto=on,crypto-keyslots=" + std::to_string(cfg.slots) +
           ",crypto-caps=" + mu::format_crypto_caps(cfg.caps) +
           ",crypto-wipe-on-disable=" + (cfg.wipe_on_disable ? "on" : "off") +
           (cfg.log_keys ? ",crypto-log-keys=on" : "");
}

CryptoControllerSpec crypto_controller(const CryptoOptions& o) {
    CryptoControllerSpec s;
    s.model.slots = o.slots;
    s.model.caps = mu::parse_crypto_caps(o.caps);
    s.model.wipe_on_disable = o.wipe_on_disable;
    s.model.log_keys = o.log_keys;
    s.ctrl.id = o.id;
    s.ctrl.mcq = o.mcq;
    s.ctrl.event_log = o.event_log;
    s.ctrl.cge = o.cge;
    s.ctrl.lus = {LuSpec{0, o.lu_bytes, 0}};
    s.ctrl.props = crypto_props(s.model);
    return s;
}

std::array<std::uint8_t, 64> test_cryptokey(unsigned key_bits, std::uint64_t seed) {
    const auto half = key_bits / 8;
    const auto k = pattern_bytes(2 * half, seed ^ 0x6b6579u);
    return ufs::xts_key_image(std::span(k).first(half), std::span(k).subspan(half));
}

ModelledRig::ModelledRig(std::vector<CryptoControllerSpec> specs, bool enable)
    : rig_(controller_specs(specs), false) {
    for (std::size_t i = 0; i < specs.size(); ++i) {
        engines_.emplace_back(specs[i].model);
        effects_.emplace_back();
        for (const auto& lu : specs[i].ctrl.lus) {
            shadow_[{i, lu.lun}] = std::vector<std::uint8_t>(lu.bytes, lu.fill);
        }
    }
    for (std::size_t i = 0; i < specs.size(); ++i) {
        host(i).set_write_observer([this, i](std::uint32_t off, std::uint32_t value) {
            for (auto& e : engines_[i].write(off, value)) {
                effects_[i].push_back(std::move(e));
            }
        });
        caps_.push_back(ufs::read_crypto_capabilities(host(i)));
    }
    if (enable) {
        for (std::size_t i = 0; i < specs.size(); ++i) {
            rig_.bring_up(i);
        }
    }
}

void ModelledRig::program(std::size_t ctrl, unsigned slot,
                          std::span<const std::uint8_t, 64> cryptokey, std::uint32_t du_bytes,
                          std::uint8_t capidx) {
    program_raw(ctrl, slot, cryptokey, ufs::cfg_dword16(du_bytes, capidx, true));
}

void ModelledRig::program_raw(std::size_t ctrl, unsigned slot,
                              std::span<const std::uint8_t, 64> cryptokey, std::uint32_t dword16) {
    // The offset comes from CCAP.CFGPTR as read from the device, like Linux.
    ufs::write_keyslot(host(ctrl), caps_.at(ctrl).cfg_offset(slot), cryptokey, dword16);
}

void ModelledRig::evict(std::size_t ctrl, unsigned slot) {
    ufs::evict_keyslot(host(ctrl), caps_.at(ctrl), slot);
}

void ModelledRig::inject_faults(std::size_t ctrl, std::uint32_t count, bool fatal) {
    rig_.machine().qom_set(rig_.qom_path(ctrl), "crypto-fault-fatal", fatal);
    rig_.machine().qom_set(rig_.qom_path(ctrl), "crypto-fault-count", count);
    engines_.at(ctrl).inject_faults(count, fatal);
}

IoCheck ModelledRig::write(std::size_t ctrl, std::uint8_t lun, std::uint64_t lba,
                           std::span<const std::uint8_t> data, ufs::CryptoFields crypto,
                           std::vector<std::uint32_t> segments) {
    ufs::Request req;
    req.lun = lun;
    const auto blocks = static_cast<std::uint32_t>(data.size() / ufs::kLuBlockSize);
    req.cdb =
        (lba > 0xffffffffu || blocks > 0xffff)
            ? ufs::cdb_write16(lba, blocks)
            : ufs::cdb_write10(static_cast<std::uint32_t>(lba), static_cast<std::uint16_t>(blocks));
    req.dir = ufs::DataDir::to_device;
    req.out.assign(data.begin(), data.end());
    req.crypto = crypto;
    req.segments = std::move(segments);
    req.read_back_out = crypto.ce;
    return command(ctrl, req, mu::CommandKind::write, lba, data.size());
}

IoCheck ModelledRig::read(std::size_t ctrl, std::uint8_t lun, std::uint64_t lba,
                          std::uint32_t blocks, ufs::CryptoFields crypto,
                          std::vector<std::uint32_t> segments) {
    ufs::Request req;
    req.lun = lun;
    req.cdb =
        (lba > 0xffffffffu || blocks > 0xffff)
            ? ufs::cdb_read16(lba, blocks)
            : ufs::cdb_read10(static_cast<std::uint32_t>(lba), static_cast<std::uint16_t>(blocks));
    req.dir = ufs::DataDir::from_device;
    req.in_len = std::size_t{blocks} * ufs::kLuBlockSize;
    req.crypto = crypto;
    req.segments = std::move(segments);
    return command(ctrl, req, mu::CommandKind::read, lba, req.in_len);
}

IoCheck ModelledRig::command(std::size_t ctrl, const ufs::Request& req, mu::CommandKind kind,
                             std::uint64_t lba, std::uint64_t length) {
    mu::Request mreq;
    mreq.ce = req.crypto.ce;
    mreq.cci = req.crypto.cci;
    mreq.dun = req.crypto.dun;
    mreq.offset = lba * ufs::kLuBlockSize;
    mreq.length = length;
    mreq.kind = kind;
    IoCheck chk;
    chk.expected = engines_.at(ctrl).submit(mreq);
    chk.got = host(ctrl).submit(req);
    return finish(ctrl, req.lun, mreq, req, std::move(chk));
}

IoCheck ModelledRig::finish(std::size_t ctrl, std::uint8_t lun, const mu::Request& mreq,
                            const ufs::Request& req, IoCheck chk) {
    auto& engine = engines_.at(ctrl);
    auto& shadow = shadow_.at({ctrl, lun});
    std::ostringstream div;
    const auto& e = chk.expected;
    const auto& g = chk.got;

    if (g.ocs != e.ocs) {
        div << "OCS: device " << ufs::ocs_name(g.ocs) << ", model " << ufs::ocs_name(e.ocs)
            << " (model error '" << mu::to_string(e.error) << "'); ";
    }
    const bool cefes = (g.is & ufs::bits::kIsCefes) != 0;
    if (cefes != e.fatal) {
        div << "IS.CEFES " << (cefes ? "set" : "clear") << ", model expects "
            << (e.fatal ? "set" : "clear") << "; ";
    }
    if (cefes) {
        host(ctrl).wreg(ufs::reg::kIs, ufs::bits::kIsCefes);
    }
    if (!g.gaps_intact) {
        div << "the device wrote guest memory between PRDT entries; ";
    }
    if (e.ocs == mu::kOcsSuccess && g.ocs == e.ocs && g.scsi_status != 0) {
        div << "SCSI status " << hex(g.scsi_status) << " on a successful request; ";
    }

    if (mreq.kind == mu::CommandKind::write) {
        if (e.transfers) {
            const auto bytes = engine.medium_bytes(mreq, e, req.out);
            std::copy(bytes.begin(), bytes.end(),
                      shadow.begin() + static_cast<std::ptrdiff_t>(mreq.offset));
        }
        const auto got = rig_.medium(ctrl, lun, mreq.offset, mreq.length);
        const auto want = std::span(shadow).subspan(mreq.offset, mreq.length);
        if (const auto d = first_difference(got, want); !d.empty()) {
            div << "medium after WRITE: " << d << "; ";
        }
        if (req.read_back_out) {
            if (const auto d = first_difference(g.out_after, req.out); !d.empty()) {
                div << "guest write buffer modified: " << d << "; ";
            }
        }
    } else if (mreq.kind == mu::CommandKind::read) {
        const auto medium = std::span(shadow).subspan(mreq.offset, mreq.length);
        if (e.transfers) {
            const auto want = engine.host_bytes(mreq, e, medium);
            if (const auto d = first_difference(g.in, want); !d.empty()) {
                div << "data read: " << d << "; ";
            }
        } else {
            const std::vector<std::uint8_t> untouched(g.in.size(), kReadFill);
            if (const auto d = first_difference(g.in, untouched); !d.empty()) {
                div << "a refused READ still changed the guest buffer: " << d << "; ";
            }
        }
    } else if (mreq.kind == mu::CommandKind::other_data_out) {
        const auto got = rig_.medium(ctrl, lun, mreq.offset, mreq.length);
        const auto want = std::span(shadow).subspan(mreq.offset, mreq.length);
        if (!e.transfers) {
            if (const auto d = first_difference(got, want); !d.empty()) {
                div << "medium changed by a refused command: " << d << "; ";
            }
        }
    }
    chk.divergence = div.str();
    return chk;
}

std::string ModelledRig::replay_log(std::size_t ctrl) const {
    std::vector<models::events::Event> log;
    try {
        log = rig_.log_events(ctrl);
    } catch (const models::events::LogError& e) {
        return std::string("event log rejected by the parser: ") + e.what();
    }
    if (log.empty()) {
        return "no event log";
    }
    mu::LogReplay replay(std::get<models::events::Realize>(log.front().body));
    for (std::size_t i = 1; i < log.size(); ++i) {
        replay.apply(log[i]);
    }
    replay.finish();
    std::string out;
    for (const auto& m : replay.mismatches()) {
        out += "seq " + std::to_string(m.seq) + ": " + m.what + "; ";
    }
    return out;
}

std::string ModelledRig::compare_medium(std::size_t ctrl, std::uint8_t lun) const {
    const auto got = rig_.whole_medium(ctrl, lun);
    return first_difference(got, shadow_.at({ctrl, lun}));
}

} // namespace icemu::test
