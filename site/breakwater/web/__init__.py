"""HTTP plumbing every feature's views share: error answers (:mod:`.errors`), JSON bodies (:mod:`.json_api`),
page responses with their surrogate keys (:mod:`.pages`) and content-hashed static assets (:mod:`.assets`)."""
