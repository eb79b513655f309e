"""The config file of CONTRACT.md, verbatim but for concrete URLs and digests."""

CONTRACT_YAML = """
models:
  - name: gpt-4o-mini            # what clients send as "model"
    aliases: [mini]
    deployments:
      - id: openai-mini          # unique; shown in x-llm-deployment and metric labels
        provider: openai         # openai | openai-compatible | azure | anthropic | mock
        model: gpt-4o-mini       # the upstream's model name
        base_url: https://api.openai.com/v1
        api_key: ${OPENAI_API_KEY}
        cost: {input_per_mtok: 0.15, output_per_mtok: 0.60}   # USD per million tokens
        capabilities: [vision, tools, json_mode]
        context_window: 128000
        weight: 1
        timeout_s: 60
  - name: gpt-4o
    deployments:
      - {id: openai-4o, provider: openai, model: gpt-4o, api_key: "${OPENAI_API_KEY}"}
routing:
  strategy: ordered              # ordered | weighted | cost | latency
  retries: 2                     # further attempts after the first, across deployments
  fallbacks: {gpt-4o: [gpt-4o-mini]}      # model -> models tried when all its deployments fail
  cooldown: {failures: 3, window_s: 60, seconds: 30}
auth:                            # absent: no auth
  api_keys:
    - {id: alice, key_sha256: "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", roles: [user], tenant: team-a}
  jwt: {jwks_url: "https://idp.example.com/.well-known/jwks.json", issuer: "https://idp.example.com/", audience: asgi-llm, algorithms: [RS256], roles_claim: roles, tenant_claim: org}
  oauth2_introspection: {url: "https://idp.example.com/introspect", client_id: proxy, client_secret: s3cret}
  roles:
    user:  {models: ["gpt-4o-mini", "claude-*"], endpoints: [chat, completions, embeddings, models]}
    admin: {models: ["*"], endpoints: ["*"], admin: true}
  audit_log: {path: audit.jsonl}
limits:
  storage: memory://             # or redis://host:6379/0 (any `limits` storage URI)
  strategy: moving-window        # moving-window | fixed-window | sliding-window-counter
  rules:
    - {per: key, requests: 60/minute, tokens: 100000/minute}
    - {per: tenant, requests: 600/minute}
    - {per: model, model: gpt-4o, requests: 1000/minute}
  budgets:
    - {per: tenant, usd: 100, period: month}
cache:                           # absent: no cache
  backend: memory://             # or redis://host:6379/1
  ttl_s: 3600
  namespace_by: tenant           # tenant | key | global
  semantic: {enabled: false, threshold: 0.9, model: all-MiniLM-L6-v2}
metrics:
  prometheus: {path: /metrics}
  statsd: {host: 127.0.0.1, port: 8125, prefix: asgi_llm}   # DogStatsD tags
"""
