#pragma once
/// The web page served at `/`: one self-contained HTML document (no CDN, nothing fetched at run
/// time but the server's own API).

#include <string>

namespace hg::serve {

/// The page: pick or drop an image and see the skeletons with per-joint scores, or run the
/// webcam live with frame rate and latency; a selector shows any stack's prediction.
const std::string& index_page();

}  // namespace hg::serve
