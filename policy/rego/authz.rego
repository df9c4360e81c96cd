# meshguard: Istio AuthorizationPolicy / PeerAuthentication semantics as one
# fixed, data-driven Rego v1 module. Policies are DATA (data.meshguard.pdata.mg, built by
# policy/translate.go); this module never changes with the policy set, so it is
# compiled once per snapshot and only the policies of the destination
# workload's namespace plus the root namespace are touched per request
# (spec authz.md §5 item 9, §8).
#
# data.meshguard.pdata.mg layout (everything a request needs is under one namespace view,
# so a request does a single lookup; root-namespace policies and the mesh
# PeerAuthentication are merged into every view at translation time):
#   ns[<namespace>] = view;  dflt = view for namespaces without own policies
#   view = {"b": {<bucket>: {"n": count, "any": [policy], "by": {label: {value: [policy]}}}},
#           "x": true if the view has reporting-only buckets (audit, custom, dry_*),
#           "pa": {"mode", "id"} namespace-or-mesh PeerAuthentication (spec §2.2 steps 1-3),
#           "wl": [{"sel", "mode", "id", "ports": {"<port>": mode}}] workload PAs, oldest first}
#   buckets: allow deny audit custom dry_allow dry_deny dry_audit
# policy = {"o": age rank, "id": "ns/name", "sel": {label: value}, "rules": [rule], "trules": [rule] (TCP variant)}
# rule   = {"i": index in spec.rules, "c": [or-group], "flat": bool, "f": [cond]}; or-group = [and-group]; and-group = [cond]
#          flat: every or-group has one and-group and "f" is their concatenation
#          (from entries form one or-group, to entries another, all when conditions one and-group)
# cond   = {"kind": "g"|"cl"|"rp", "neg": bool, "k": header name or claim path,
#           "a": [atom], "rp": [{"iss": [atom], "sub": [atom]}]}
# atom   = {"f": attribute (see attr), "t": kind (see satom), "v": values}
package meshguard.authz

import data.meshguard.pdata.mg

# ---------------------------------------------------------------- selection

# (Negated existentials instead of `every`: measurably fewer allocations in topdown.)
sel_ok(sel) if not sel_fail(sel)

sel_fail(sel) if {
	some k, v in sel
	not input.labels[k] == v
}

# ------------------------------------------------------ PeerAuthentication

# Workload-level PAs matching the destination, oldest first (spec §2.2 step 6).
nsd := x if {
	x := mg.ns[input.ns]
} else := mg.dflt

pa_wl := [p | some p in nsd.wl; sel_ok(p.sel)]

# Effective mode (spec §2.2): port entry of the workload policy, else the
# workload mode, else namespace, else mesh, else PERMISSIVE. UNSET inherits.
pa_eff := {"mode": m, "id": pa_wl[0].id} if {
	m := pa_wl[0].ports[input.dport]
	m != "UNSET"
} else := {"mode": pa_wl[0].mode, "id": pa_wl[0].id} if {
	pa_wl[0].mode != "UNSET"
} else := nsd.pa

# DISABLE means the sidecar does not terminate TLS: no peer identity (spec §2.3).
mtls if {
	input.principal != ""
	pa_eff.mode != "DISABLE"
}

strict_plaintext if {
	pa_eff.mode == "STRICT"
	input.principal == ""
}

# ----------------------------------------------------------------- matching
# A cond is a list of atoms (OR); each atom is one match kind over one input
# attribute. Both the attribute and the kind are constant first arguments, so
# OPA's rule index picks the single applicable body.

# satom(kind, values, s): generic string syntax (spec §1.4) and CIDRs.
satom("e", v, s) if v[s]

satom("p", v, s) if {
	some x in v
	startswith(s, x)
}

satom("s", v, s) if {
	some x in v
	endswith(s, x)
}

satom("a", _, s) if s != ""

satom("x", _, _) if true

satom("n", _, _) if true

satom("r", v, s) if {
	some re in v
	regex.match(re, s)
}

satom("c", v, s) if {
	s != ""
	some x in v
	net.cidr_contains(x, s)
}

# attr(name, cond): the request attribute; undefined when absent, so positive
# matches fail and negated ones hold. Peer-certificate attributes need mTLS (spec §1.8).
attr("principal", _) := input.spiffe if mtls

attr("praw", _) := input.principal if mtls

attr("src_ns", _) := input.src_ns if mtls

attr("src_sa", _) := input.src_sa if mtls

attr("src_td", _) := input.src_td if mtls

attr("header", c) := input.headers[c.k]

attr("host", _) := input.host

attr("method", _) := input.method

attr("path", _) := input.path

attr("port", _) := input.dport

attr("srcip", _) := input.src_ip

attr("remoteip", _) := input.remote_ip

attr("dstip", _) := input.dst_ip

attr("sni", _) := input.sni

# pos(kind, cond): the cond's values match (before negation).
pos("g", c) if {
	some a in c.a
	satom(a.t, a.v, attr(a.f, c))
}

# JWT claims: a string, or a list with a matching string element (spec §1.4).
pos("cl", c) if {
	v := object.get(input.jwt.claims, c.k, null)
	is_string(v)
	some a in c.a
	satom(a.t, a.v, v)
}

pos("cl", c) if {
	v := object.get(input.jwt.claims, c.k, null)
	is_array(v)
	some x in v
	is_string(x)
	some a in c.a
	satom(a.t, a.v, x)
}

# requestPrincipals: issuer and subject matched separately (spec §1.4 trap).
pos("rp", c) if {
	j := input.jwt
	some rp in c.rp
	some ia in rp.iss
	satom(ia.t, ia.v, j.iss)
	some sa in rp.sub
	satom(sa.t, sa.v, j.sub)
}

# cok(neg, cond): a negated cond (notX / notValues) is a NOR of its values.
cok(false, c) if pos(c.kind, c)

cok(true, c) if not pos(c.kind, c)

# rule = any from AND any to AND all when (spec §1.3), pre-shaped as AND of ORs of ANDs.
# rok(flat, rule): flat rules (every or-group has a single AND-group) are one AND.
rok(true, r) if not g_fail(r.f)

rok(false, r) if not og_fail(r)

og_fail(r) if {
	some og in r.c
	not og_ok(og)
}

og_ok(og) if {
	some g in og
	not g_fail(g)
}

g_fail(g) if {
	some c in g
	not cok(c.neg, c)
}

# input.rk is "trules" for TCP requests: the variant translate.go precomputed
# with ALLOW rules holding HTTP-only fields dropped and HTTP-only fields
# removed from the others (spec §1.9); else "rules".

# hit(p): [order, policy id, index of the first matching rule], undefined if none.
hit(p) := [p.o, p.id, idx[0]] if {
	sel_ok(p.sel)
	idx := [r.i | some r in p[input.rk]; rok(r.flat, r)]
	count(idx) > 0
}

# hit_any: policies without a selector (the "any" list) need no selector check.
hit_any(p) := [p.o, p.id, idx[0]] if {
	idx := [r.i | some r in p[input.rk]; rok(r.flat, r)]
	count(idx) > 0
}

# Buckets index policies by their first selector label, so only policies that
# can select the workload are visited.
bhits(x) := array.concat(
	[h | some p in x.any; h := hit_any(p)],
	[h | some k, v in input.labels; some p in x.by[k][v]; h := hit(p)],
)

# Oldest policy first (creation time, then name), as istiod orders them.
hits(b) := sort(bhits(x)) if {
	x := nsd.b[b]
	x.n > 0
} else := []

deny_hits := hits("deny")

allow_hits := hits("allow")

allow_exists if {
	nsd.b.allow.n > 0
	some p in nsd.b.allow.any
}

allow_exists if {
	nsd.b.allow.n > 0
	some k, v in input.labels
	some p in nsd.b.allow.by[k][v]
	sel_ok(p.sel)
}

# user_deny, user_reason and user_headers come from rego/user/on.rego when user modules are
# loaded, else from rego/user/off.rego (constants: no per-request cost).

# ---------------------------------------------------------------- decision
# Order: PeerAuthentication, CUSTOM (reported only), DENY, user deny, ALLOW,
# default (spec §1.7). AUDIT never changes the decision.

decision := {"allowed": false, "action": "DENY", "policy": pa_eff.id, "rule": -1, "reason": "mTLS required"} if {
	strict_plaintext
} else := {"allowed": false, "action": "DENY", "policy": h[1], "rule": h[2], "reason": "denied by DENY policy"} if {
	h := deny_hits[0]
} else := {"allowed": false, "action": "DENY", "policy": "user", "rule": -1, "reason": user_reason} if {
	count(user_deny) > 0
} else := {"allowed": true, "action": "ALLOW", "policy": h[1], "rule": h[2], "reason": "allowed by ALLOW policy"} if {
	h := allow_hits[0]
} else := {"allowed": false, "action": "NONE", "policy": "", "rule": -1, "reason": "no matching ALLOW policy"} if {
	allow_exists
} else := {"allowed": true, "action": "NONE", "policy": "", "rule": -1, "reason": "no ALLOW policy for workload"}

result := {
	"d": decision,
	"mode": pa_eff.mode,
	"x": extras,
	"h": user_headers,
}

# Reporting-only buckets are evaluated only where such policies exist.
extras := {
	"audit": hits("audit"),
	"custom": hits("custom"),
	"dry_allow": hits("dry_allow"),
	"dry_deny": hits("dry_deny"),
} if {
	nsd.x
} else := {}
