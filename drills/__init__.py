"""Disaster-recovery drills on the two-site-three-center cloud: plans as data, a runner that
injects faults and recovers, measured RTO/RPO/detection, and bilingual reports."""
