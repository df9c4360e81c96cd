# No user modules: constants, so the decision chain pays nothing for them.
package meshguard.authz

user_deny := []

user_headers := {}

user_reason := ""
