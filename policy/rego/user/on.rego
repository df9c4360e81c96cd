# User modules loaded: their denies and response headers (docs/authz-user-rego.md).
package meshguard.authz

user_deny := [m | some m in data.meshguard.user.deny]

user_headers := {k: v | some k, v in data.meshguard.user.response_headers; is_string(k); is_string(v)}

user_reason := r if {
	r := user_deny[0]
	is_string(r)
} else := "denied by user policy"
