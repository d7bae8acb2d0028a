package webui

// AuditAction returns the audit action of a page route pattern, and
// whether it is left out of the audit on purpose.
func AuditAction(pattern string) (action string, exempt bool) {
	return auditActions[pattern], notAudited[pattern]
}
