"""Just enough AWS for the in-function runtime, on the standard library: SigV4 signing,
credentials from Lambda's environment, and an S3 GET client. boto3 costs ~0.3 s of import
and client creation on a cold start; these cost a few milliseconds."""
