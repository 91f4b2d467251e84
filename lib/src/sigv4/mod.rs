//! AWS Signature Version 4: verifying requests on the server and signing them in clients.
