package cliplake.s3a;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Optional;

import org.apache.hadoop.conf.Configuration;
import software.amazon.awssdk.auth.credentials.AwsCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.profiles.ProfileFile;
import software.amazon.awssdk.profiles.ProfileFileLocation;

/**
 * S3A credentials from a named AWS profile, refreshed as they expire.
 *
 * <p>Example (what {@code jobs/s3a.py} sets for a lake bucket):
 * <pre>
 * fs.s3a.bucket.lake.aws.credentials.provider  cliplake.s3a.ProfileCredentialsProvider
 * fs.s3a.bucket.lake.cliplake.profile          writer
 * </pre>
 *
 * <p>S3A copies {@code fs.s3a.bucket.B.*} to {@code fs.s3a.*} before it builds a bucket's providers,
 * then instantiates this class through its {@code (URI, Configuration)} constructor. The work is the
 * AWS SDK's own {@link software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider}: static
 * keys, {@code credential_process}, {@code role_arn} (assumed roles) and {@code sso_*} profiles, each
 * refreshed before its expiration, in every JVM (driver and executors) that opens the bucket.
 *
 * <p>{@code fs.s3a.cliplake.profile.credentials.file} and {@code fs.s3a.cliplake.profile.config.file}
 * name the profile files when the driver was told where they are ({@code AWS_SHARED_CREDENTIALS_FILE},
 * {@code AWS_CONFIG_FILE}); otherwise the SDK looks where it always does (those variables in this JVM,
 * then {@code ~/.aws/}). Paths are read on every node, so each node needs the files there.
 */
public final class ProfileCredentialsProvider implements AwsCredentialsProvider, AutoCloseable {
  /** The profile's name (required). */
  public static final String PROFILE = "fs.s3a.cliplake.profile";
  /** The shared credentials file, when not the SDK's default. */
  public static final String CREDENTIALS_FILE = "fs.s3a.cliplake.profile.credentials.file";
  /** The config file, when not the SDK's default. */
  public static final String CONFIG_FILE = "fs.s3a.cliplake.profile.config.file";

  private final String profile;
  private final software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider delegate;

  public ProfileCredentialsProvider(URI bucket, Configuration conf) {
    profile = conf.getTrimmed(PROFILE, "");
    if (profile.isEmpty()) {
      throw new IllegalArgumentException(PROFILE + " is not set for " + bucket
          + ": set fs.s3a.bucket.BUCKET." + PROFILE.substring("fs.s3a.".length()) + " to an AWS profile name");
    }
    software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider.Builder builder =
        software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider.builder().profileName(profile);
    String credentials = conf.getTrimmed(CREDENTIALS_FILE, "");
    String config = conf.getTrimmed(CONFIG_FILE, "");
    if (!credentials.isEmpty() || !config.isEmpty()) {
      builder.profileFile(profileFiles(config, credentials));
    }
    delegate = builder.build();
  }

  /** Both files merged as the SDK merges its defaults; a path not given falls back to the default one. */
  private static ProfileFile profileFiles(String config, String credentials) {
    ProfileFile.Aggregator files = ProfileFile.aggregator();
    file(config, ProfileFileLocation.configurationFileLocation())
        .ifPresent(path -> files.addFile(ProfileFile.builder().content(path).type(ProfileFile.Type.CONFIGURATION).build()));
    file(credentials, ProfileFileLocation.credentialsFileLocation())
        .ifPresent(path -> files.addFile(ProfileFile.builder().content(path).type(ProfileFile.Type.CREDENTIALS).build()));
    return files.build();
  }

  private static Optional<Path> file(String given, Optional<Path> fallback) {
    return (given.isEmpty() ? fallback : Optional.of(Paths.get(given))).filter(Files::exists);  // as boto3: a missing file is empty
  }

  @Override
  public AwsCredentials resolveCredentials() {
    return delegate.resolveCredentials();
  }

  @Override
  public void close() {
    delegate.close();
  }

  @Override
  public String toString() {
    return "cliplake.s3a.ProfileCredentialsProvider(profile=" + profile + ")";
  }
}
