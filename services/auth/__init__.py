"""swarmd.services.auth: who may call which RPC of swarmd's services.

Off unless a service's ``auth`` settings name a credential source
(:class:`~.settings.AuthSettings`); then :class:`~swarmd.services._host.ServiceHost`
installs :class:`~.interceptor.AuthInterceptor` on the server and adds the
service's own token to its channels to peers.

=============  ==========================================================
settings       the ``auth`` section of every service's settings
identity       the caller (subject, role, tenant, scope), per call
policy         the one method -> role table, and the subagent scope check
tokens         static tokens from a file of SHA-256 hashes, reloaded
jwt_keys       JWTs verified against a JWKS file or URL
peers          mTLS certificate names and the mesh header
subagent       per-attempt HMAC tokens scoped to a swarm and subtask
authenticator  metadata and transport -> identity, or UNAUTHENTICATED
interceptor    the server interceptor: authenticate, authorize, record
outgoing       bearer tokens on outgoing calls (services and clients)
tenancy        the tenant checks of the orchestrator's swarm RPCs
=============  ==========================================================
"""
