#include "proxy/session/services.hpp"

namespace shardline::proxy::session {

Services::Services(boost::asio::any_io_executor executor, std::shared_ptr<const config::Config> cfg)
    : ex(executor),
      cluster(executor, cfg),
      metrics(*cfg),
      directory(router::DirectorySnapshot::from_config(*cfg)),
      schema(router::ShardingSchema::from_config(*cfg)),
      commits(std::make_unique<CommitPositions>(int(cfg->shards.size()), cfg->sharding.logical_shards)) {
  load_credentials(*cfg);
  if (cfg->tls.enabled()) {
    client_tls = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
    client_tls->set_options(boost::asio::ssl::context::default_workarounds |
                            boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                            boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1);
    client_tls->use_certificate_chain_file(cfg->tls.cert_file);
    client_tls->use_private_key_file(cfg->tls.key_file, boost::asio::ssl::context::pem);
  }
}

void Services::load_credentials(const config::Config& cfg) {
  std::unordered_map<std::string, Credentials> fresh;
  for (const auto& u : cfg.users) {
    Credentials c{u, {}};
    if (u.auth == config::AuthMethod::ScramSha256) {
      // A password given as a stored SCRAM secret is used as is; plain text is derived here.
      if (auto parsed = protocol::parse_scram_secret(u.password)) {
        c.scram = *parsed;
      } else {
        auto it = credentials.find(u.name);
        if (it != credentials.end() && it->second.user.password == u.password)
          c.scram = it->second.scram;  // unchanged: keep the salt, skip PBKDF2
        else
          c.scram = protocol::make_scram_secret(u.password);
      }
    }
    fresh.emplace(u.name, std::move(c));
  }
  credentials = std::move(fresh);
}

}  // namespace shardline::proxy::session
