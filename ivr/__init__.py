"""The phone side: FastAGI call flows, the AMI client and the broadcast dialer."""
