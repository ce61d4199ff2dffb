// Package remediate plans and applies remediation: inventory, per-host engine, waves, journal.
package remediate
