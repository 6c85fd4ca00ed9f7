#pragma once
// Line framing of the host <-> guest channels (one JSON document per line), shared by the
// guest program's virtio-serial port and the runner's unix sockets.
#include <string>

namespace icemu::lines {

// Moves the first complete line of `buf` (without its '\n') into `line`; false when `buf`
// holds no '\n' yet.
inline bool take(std::string& buf, std::string& line) {
    auto nl = buf.find('\n');
    if (nl == std::string::npos)
        return false;
    line = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    return true;
}

} // namespace icemu::lines
