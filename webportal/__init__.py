"""The web portal: guardians (webportal.guardian) and staff (webportal.staff) on one app."""
