// A Rig whose controllers are shadowed by the reference model (models/ufshci_crypto.hpp):
// every register write goes to the device and to the model, and every I/O is predicted by the
// model (OCS, bytes on the medium, bytes read back) and compared with what the device did.
// Expected values come only from the model; the shadow media start from the LUs' fill bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "device/rig.hpp"
#include "icemu/models/ufshci_crypto.hpp"

namespace icemu::test {

namespace mu = icemu::models::ufshci;

struct CryptoControllerSpec {
    ControllerSpec ctrl;
    mu::Config model; // must describe the same device as ctrl.props
};

// docs/device.md property string for a model config.
std::string crypto_props(const mu::Config& cfg);

struct CryptoOptions {
    std::string caps = "aes-xts-256:0x0f"; // crypto-caps syntax (docs/device.md)
    unsigned slots = 32;
    bool mcq = false;
    bool wipe_on_disable = true;
    bool event_log = false;
    bool cge = true;
    bool log_keys = false; // crypto-log-keys
    std::string id = "ufs0";
    std::size_t lu_bytes = 4u << 20;
};
// A crypto=on controller and the model config describing it.
CryptoControllerSpec crypto_controller(const CryptoOptions& o);

struct IoCheck {
    mu::Outcome expected;
    ufs::Completion got;
    std::string divergence; // empty when the device did what the model predicts
    bool ok() const { return divergence.empty(); }
};

class ModelledRig {
public:
    explicit ModelledRig(std::vector<CryptoControllerSpec> specs, bool enable = true);
    explicit ModelledRig(CryptoControllerSpec spec, bool enable = true)
        : ModelledRig(std::vector<CryptoControllerSpec>{std::move(spec)}, enable) {}

    Rig& rig() { return rig_; }
    ufs::UfsHost& host(std::size_t i = 0) { return rig_.host(i); }
    mu::Engine& model(std::size_t i = 0) { return engines_.at(i); }
    const ufs::CryptoCapabilities& caps(std::size_t i = 0) const { return caps_.at(i); }
    // Model effects (expected event-log bodies) of the register writes so far, in order.
    const std::vector<mu::Effect>& effects(std::size_t i = 0) const { return effects_.at(i); }
    std::vector<mu::Effect>& effects(std::size_t i = 0) { return effects_.at(i); }

    // 19-write program of a 64-byte CRYPTOKEY image / evict, mirrored into the model.
    void program(std::size_t ctrl, unsigned slot, std::span<const std::uint8_t, 64> cryptokey,
                 std::uint32_t du_bytes, std::uint8_t capidx = 0);
    void program_raw(std::size_t ctrl, unsigned slot, std::span<const std::uint8_t, 64> cryptokey,
                     std::uint32_t dword16);
    void evict(std::size_t ctrl, unsigned slot);

    // qom-set crypto-fault-count / crypto-fault-fatal, mirrored into the model.
    void inject_faults(std::size_t ctrl, std::uint32_t count, bool fatal);

    // A data command checked against the model. Bytes are whole LU blocks.
    IoCheck write(std::size_t ctrl, std::uint8_t lun, std::uint64_t lba,
                  std::span<const std::uint8_t> data, ufs::CryptoFields crypto,
                  std::vector<std::uint32_t> segments = {});
    IoCheck read(std::size_t ctrl, std::uint8_t lun, std::uint64_t lba, std::uint32_t blocks,
                 ufs::CryptoFields crypto, std::vector<std::uint32_t> segments = {});
    // Any other command (e.g. WRITE SAME, INQUIRY) with CE as given.
    IoCheck command(std::size_t ctrl, const ufs::Request& req, mu::CommandKind kind,
                    std::uint64_t lba, std::uint64_t length);

    // The model's view of the medium; compare with the backing file.
    const std::vector<std::uint8_t>& shadow(std::size_t ctrl, std::uint8_t lun) const {
        return shadow_.at({ctrl, lun});
    }
    // Empty when the whole backing file equals the shadow, else the first differing offset.
    std::string compare_medium(std::size_t ctrl, std::uint8_t lun) const;

    // Controller ctrl's event log (needs CryptoOptions::event_log) read by the models' parser
    // and replayed by ufshci::LogReplay, as icemu-check does: "" when it replays cleanly, else
    // the parse error or the mismatches.
    std::string replay_log(std::size_t ctrl) const;

private:
    IoCheck finish(std::size_t ctrl, std::uint8_t lun, const mu::Request& mreq,
                   const ufs::Request& req, IoCheck chk);

    Rig rig_;
    std::vector<mu::Engine> engines_;
    std::vector<ufs::CryptoCapabilities> caps_;
    std::vector<std::vector<mu::Effect>> effects_;
    std::map<std::pair<std::size_t, std::uint8_t>, std::vector<std::uint8_t>> shadow_;
};

// Deterministic 64-byte CRYPTOKEY image for an XTS key of key_bits (128/256) from a seed.
std::array<std::uint8_t, 64> test_cryptokey(unsigned key_bits, std::uint64_t seed);

} // namespace icemu::test
