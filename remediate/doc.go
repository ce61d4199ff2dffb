// Package remediate takes hosts from an inventory to a diagnosis: it parses the host list
// (ParseInventory, every problem named by file, line and field) and probes the hosts in
// parallel over WinRM, diagnosing each under the playbooks (Detector).
package remediate
