package httpapi

// RoutePatterns returns the ServeMux pattern of every route, for the test
// that checks the OpenAPI document describes each of them.
func RoutePatterns() []string {
	var out []string
	for _, rt := range (&server{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}

// AuditAction returns the audit action of a route pattern, and whether the
// route is left out of the audit on purpose.
func AuditAction(pattern string) (action string, exempt bool) {
	return auditActions[pattern], notAudited[pattern]
}
